//! A call's time, as its budget counts it: the wall-clock time since the sandbox was made,
//! less the time the host kept the call waiting — for a core (the call was ready to run and
//! the executor had not polled it yet: many calls at once on few cores) and for key work done
//! on the plugin's behalf (an RSA signature waits for a free core off the async workers). A
//! plugin under load keeps its whole budget; a plugin that computes or sleeps does not.

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

/// The most host time a call's deadline is moved by: a call kept waiting longer than this is a
/// host in trouble, and the call ends.
const MOST_HOST_TIME: Duration = Duration::from_secs(10);

/// Shared by a call's store (the epoch check reads it) and its outer deadline, which cannot
/// borrow the store while the call runs.
#[derive(Debug)]
pub(crate) struct CallClock {
    started: Instant,
    /// Host time of the waits that are over.
    host_micros: AtomicU64,
    /// When the host work under way began, in microseconds since `started` plus one (0: none):
    /// a deadline reached while the host works for the call is not the plugin's.
    host_since: AtomicU64,
}

impl CallClock {
    pub(crate) fn new() -> Self {
        Self {
            started: Instant::now(),
            host_micros: AtomicU64::new(0),
            host_since: AtomicU64::new(0),
        }
    }

    fn micros_since_start(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_micros()).unwrap_or(u64::MAX)
    }

    /// Marks work the host does for the call (a key operation, queued for a core) until the
    /// guard is dropped: that time is the host's, counted as it goes.
    pub(crate) fn host_work(&self) -> HostWork<'_> {
        let since = self.micros_since_start().saturating_add(1);
        self.host_since.store(since, Ordering::Relaxed);
        HostWork {
            clock: self,
            since: Instant::now(),
        }
    }

    /// Adds `spent` to the host's share of this call.
    pub(crate) fn add_host_time(&self, spent: Duration) {
        let micros = u64::try_from(spent.as_micros()).unwrap_or(u64::MAX);
        self.host_micros.fetch_add(micros, Ordering::Relaxed);
    }

    fn host_time(&self) -> Duration {
        let ongoing = match self.host_since.load(Ordering::Relaxed) {
            0 => 0,
            since => self.micros_since_start().saturating_sub(since - 1),
        };
        let done = self.host_micros.load(Ordering::Relaxed);
        Duration::from_micros(done.saturating_add(ongoing)).min(MOST_HOST_TIME)
    }

    /// The time the plugin has used of its budget.
    pub(crate) fn plugin_time(&self) -> Duration {
        self.started.elapsed().saturating_sub(self.host_time())
    }

    /// When a call with `budget` runs out, as far as is known now.
    fn deadline(&self, budget: Duration) -> tokio::time::Instant {
        tokio::time::Instant::from_std(self.started + budget + self.host_time())
    }
}

/// Host work under way for a call; see [`CallClock::host_work`].
pub(crate) struct HostWork<'c> {
    clock: &'c CallClock,
    since: Instant,
}

impl Drop for HostWork<'_> {
    fn drop(&mut self) {
        self.clock.host_since.store(0, Ordering::Relaxed);
        self.clock.add_host_time(self.since.elapsed());
    }
}

/// Runs `call` until it ends or its budget runs out (`None`). The time it waits to be polled
/// after a wake-up is the host's; the deadline moves by it (and by key work), so it is checked
/// again when first reached.
pub(crate) async fn within_budget<T>(
    clock: &CallClock,
    budget: Duration,
    call: impl Future<Output = T>,
) -> Option<T> {
    let mut call = std::pin::pin!(Metered::new(clock, call));
    loop {
        let deadline = clock.deadline(budget);
        match tokio::time::timeout_at(deadline, call.as_mut()).await {
            Ok(result) => return Some(result),
            Err(_) if clock.deadline(budget) > deadline => continue,
            Err(_) => return None,
        }
    }
}

/// A future that charges the host with the time between each wake-up and the poll that
/// follows it.
struct Metered<'c, F> {
    clock: &'c CallClock,
    wakes: Arc<WakeRecorder>,
    call: Pin<Box<F>>,
}

impl<'c, F> Metered<'c, F> {
    fn new(clock: &'c CallClock, call: F) -> Self {
        Self {
            clock,
            wakes: Arc::new(WakeRecorder::default()),
            call: Box::pin(call),
        }
    }
}

impl<F: Future> Future for Metered<'_, F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        if let Some(waited) = self.wakes.polled_now(cx.waker()) {
            self.clock.add_host_time(waited);
        }
        let waker = Waker::from(self.wakes.clone());
        self.call.as_mut().poll(&mut Context::from_waker(&waker))
    }
}

/// Passes wake-ups on to the executor's waker, noting when the first one since the last poll
/// came.
#[derive(Default)]
struct WakeRecorder {
    state: Mutex<WakeState>,
}

#[derive(Default)]
struct WakeState {
    waker: Option<Waker>,
    woken_at: Option<Instant>,
}

impl WakeRecorder {
    /// Called at each poll: keeps the executor's current waker and returns how long the call
    /// waited since it was woken, if it was.
    fn polled_now(&self, waker: &Waker) -> Option<Duration> {
        let mut state = self.state.lock().expect("the wake state is never poisoned");
        if !state.waker.as_ref().is_some_and(|w| w.will_wake(waker)) {
            state.waker = Some(waker.clone());
        }
        state.woken_at.take().map(|at| at.elapsed())
    }
}

impl Wake for WakeRecorder {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let waker = {
            let mut state = self.state.lock().expect("the wake state is never poisoned");
            state.woken_at.get_or_insert_with(Instant::now);
            state.waker.clone()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "current_thread")]
    async fn time_spent_waiting_for_the_executor_is_the_hosts() {
        let clock = Arc::new(CallClock::new());
        let budget = Duration::from_millis(100);
        let call = {
            let clock = clock.clone();
            tokio::spawn(async move {
                let call = async {
                    tokio::task::yield_now().await;
                    42
                };
                within_budget(&clock, budget, call).await
            })
        };
        // The call runs, yields and is woken at once; then the only executor thread is busy
        // for 300 ms before it polls the call again. That wait is not the plugin's.
        tokio::task::yield_now().await;
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(call.await.unwrap(), Some(42));
        assert!(clock.plugin_time() < budget, "{:?}", clock.plugin_time());
    }

    #[tokio::test]
    async fn a_call_waiting_for_host_work_past_its_budget_goes_on() {
        // An RSA signature queued behind many others: 300 ms of host work in a 100 ms budget.
        let clock = CallClock::new();
        let call = async {
            let _host = clock.host_work();
            tokio::time::sleep(Duration::from_millis(300)).await;
            42
        };
        let answer = within_budget(&clock, Duration::from_millis(100), call).await;
        assert_eq!(answer, Some(42));
        assert!(
            clock.plugin_time() < Duration::from_millis(100),
            "{:?}",
            clock.plugin_time()
        );
    }

    #[tokio::test]
    async fn time_spent_sleeping_is_the_plugins() {
        let clock = CallClock::new();
        let call = tokio::time::sleep(Duration::from_secs(30));
        let started = Instant::now();
        assert_eq!(
            within_budget(&clock, Duration::from_millis(100), call).await,
            None
        );
        assert!(started.elapsed() < Duration::from_secs(5));
    }
}
