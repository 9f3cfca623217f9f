//! The connections a listener holds, so that idle ones can make room for new ones.
//!
//! A listener keeps at most `cap` connections. When a new one arrives at the cap, the connection
//! that is doing least for anyone is closed to make room: first one that never completed a
//! request (a slow or silent client), then the one idle the longest. A connection with a
//! request in flight is never closed for room; when every one is busy, the new connection is
//! refused instead. So someone holding thousands of idle sockets cannot keep a game server or a
//! channel's notification out: each new connection pushes one of theirs out.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Instant;

use axum::body::{Body, Bytes};
use http_body::{Frame, SizeHint};
use tokio::sync::Notify;

/// What is known of one connection.
pub struct Connection {
    id: u64,
    /// Requests whose response has not been fully sent yet.
    in_flight: AtomicU32,
    /// Whether a request ever reached the service on this connection.
    served: AtomicBool,
    /// Microseconds since the tracker started, when the connection last became idle.
    idle_since_us: AtomicU64,
    /// Woken when the connection must close to make room.
    evicted: Notify,
    tracker: Arc<Inner>,
}

struct Inner {
    started: Instant,
    next_id: AtomicU64,
    open: Mutex<HashMap<u64, Arc<Connection>>>,
}

/// The open connections of one listener.
#[derive(Clone)]
pub struct Tracker {
    inner: Arc<Inner>,
    cap: usize,
}

/// What to do with a connection that was just accepted.
pub enum Admission {
    /// Serve it; dropping the handle forgets the connection.
    Serve(Registered),
    /// Every open connection is busy: close it.
    Refuse,
}

/// A registered connection; dropping it removes the connection from the tracker.
pub struct Registered(pub Arc<Connection>);

impl Drop for Registered {
    fn drop(&mut self) {
        let mut open = self.0.tracker.open.lock().expect("tracker lock");
        open.remove(&self.0.id);
    }
}

impl Tracker {
    pub fn new(cap: usize) -> Self {
        Self {
            inner: Arc::new(Inner {
                started: Instant::now(),
                next_id: AtomicU64::new(0),
                open: Mutex::new(HashMap::new()),
            }),
            cap: cap.max(1),
        }
    }

    #[cfg(test)]
    pub fn open_count(&self) -> usize {
        self.inner.open.lock().expect("tracker lock").len()
    }

    /// Registers a new connection, closing an idle one first when the listener is full.
    pub fn admit(&self) -> Admission {
        let mut open = self.inner.open.lock().expect("tracker lock");
        if open.len() >= self.cap {
            let victim = open
                .values()
                .filter(|c| c.in_flight.load(Ordering::Acquire) == 0)
                .min_by_key(|c| {
                    (
                        c.served.load(Ordering::Relaxed),
                        c.idle_since_us.load(Ordering::Relaxed),
                    )
                })
                .cloned();
            match victim {
                Some(victim) => {
                    // Removed now, so that its slot counts as free at once.
                    open.remove(&victim.id);
                    victim.evicted.notify_one();
                }
                None => return Admission::Refuse,
            }
        }
        let connection = Arc::new(Connection {
            id: self.inner.next_id.fetch_add(1, Ordering::Relaxed),
            in_flight: AtomicU32::new(0),
            served: AtomicBool::new(false),
            idle_since_us: AtomicU64::new(self.inner.micros()),
            evicted: Notify::new(),
            tracker: self.inner.clone(),
        });
        open.insert(connection.id, connection.clone());
        Admission::Serve(Registered(connection))
    }
}

impl Inner {
    fn micros(&self) -> u64 {
        self.started.elapsed().as_micros() as u64
    }
}

impl Connection {
    /// Resolves when the tracker closes this connection to make room.
    pub async fn evicted(&self) {
        self.evicted.notified().await
    }

    /// Marks a request as in flight until the returned guard is dropped (with its response).
    pub fn request_started(self: &Arc<Self>) -> InFlight {
        self.served.store(true, Ordering::Relaxed);
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        InFlight(self.clone())
    }
}

/// A request in flight on a connection.
pub struct InFlight(Arc<Connection>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let connection = &self.0;
        connection
            .idle_since_us
            .store(connection.tracker.micros(), Ordering::Relaxed);
        connection.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A response body that keeps its request counted as in flight until it has been sent (or
/// dropped), so a connection writing an answer is never closed for room.
pub struct TrackedBody {
    inner: Body,
    _in_flight: InFlight,
}

impl TrackedBody {
    pub fn new(inner: Body, in_flight: InFlight) -> Self {
        Self {
            inner,
            _in_flight: in_flight,
        }
    }
}

impl http_body::Body for TrackedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admitted(tracker: &Tracker) -> Registered {
        match tracker.admit() {
            Admission::Serve(registered) => registered,
            Admission::Refuse => panic!("refused"),
        }
    }

    #[test]
    fn a_full_listener_closes_the_silent_connection_before_an_idle_client() {
        let tracker = Tracker::new(2);
        let client = admitted(&tracker);
        drop(client.0.request_started()); // served one request, now idle
        let silent = admitted(&tracker); // never sent a whole request
        let _new = admitted(&tracker);
        assert_eq!(tracker.open_count(), 2);
        let open = tracker.inner.open.lock().unwrap();
        assert!(open.contains_key(&client.0.id), "the served client stays");
        assert!(!open.contains_key(&silent.0.id), "the silent one made room");
    }

    #[test]
    fn busy_connections_are_never_closed_for_room() {
        let tracker = Tracker::new(1);
        let busy = admitted(&tracker);
        let in_flight = busy.0.request_started();
        assert!(matches!(tracker.admit(), Admission::Refuse));
        drop(in_flight);
        assert!(matches!(tracker.admit(), Admission::Serve(_)));
    }

    #[test]
    fn the_longest_idle_client_goes_first() {
        let tracker = Tracker::new(2);
        let older = admitted(&tracker);
        let newer = admitted(&tracker);
        drop(older.0.request_started());
        std::thread::sleep(std::time::Duration::from_millis(2));
        drop(newer.0.request_started());
        let _third = admitted(&tracker);
        let open = tracker.inner.open.lock().unwrap();
        assert!(!open.contains_key(&older.0.id));
        assert!(open.contains_key(&newer.0.id));
    }
}
