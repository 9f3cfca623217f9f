//! Moving values between two versions of the contract's generated types: an older plugin's
//! answers are upgraded to the newest types, the host's requests downgraded to the plugin's.
//! Each version module lists its records, enums and variants once with [`same_shape!`]; a field
//! or case forgotten there, or changed in the WIT, is a compile error, not a silent drop.

/// An older version's value as the newest version's.
pub(crate) trait Upgrade {
    type New;
    fn upgrade(self) -> Self::New;
}

/// The newest version's value as an older version's (`Old`), copied: the host keeps its own.
/// Generic, not an associated type: one newest type goes down to every older version.
pub(crate) trait Downgrade<Old> {
    fn downgrade(&self) -> Old;
}

macro_rules! unchanged {
    ($($t:ty),*) => {$(
        impl Upgrade for $t {
            type New = $t;
            fn upgrade(self) -> $t { self }
        }
        impl Downgrade<$t> for $t {
            fn downgrade(&self) -> $t { self.clone() }
        }
    )*};
}

unchanged!(String, bool, u8, u16, u32, i64);

impl Downgrade<String> for str {
    fn downgrade(&self) -> String {
        self.to_owned()
    }
}

impl Downgrade<Vec<u8>> for [u8] {
    fn downgrade(&self) -> Vec<u8> {
        self.to_vec()
    }
}

impl<T: Upgrade> Upgrade for Vec<T> {
    type New = Vec<T::New>;
    fn upgrade(self) -> Self::New {
        self.into_iter().map(Upgrade::upgrade).collect()
    }
}

impl<O, T: Downgrade<O>> Downgrade<Vec<O>> for Vec<T> {
    fn downgrade(&self) -> Vec<O> {
        self.iter().map(Downgrade::downgrade).collect()
    }
}

impl<T: Upgrade> Upgrade for Option<T> {
    type New = Option<T::New>;
    fn upgrade(self) -> Self::New {
        self.map(Upgrade::upgrade)
    }
}

impl<O, T: Downgrade<O>> Downgrade<Option<O>> for Option<T> {
    fn downgrade(&self) -> Option<O> {
        self.as_ref().map(Downgrade::downgrade)
    }
}

impl<A: Upgrade, B: Upgrade> Upgrade for (A, B) {
    type New = (A::New, B::New);
    fn upgrade(self) -> Self::New {
        (self.0.upgrade(), self.1.upgrade())
    }
}

impl<OA, OB, A: Downgrade<OA>, B: Downgrade<OB>> Downgrade<(OA, OB)> for (A, B) {
    fn downgrade(&self) -> (OA, OB) {
        (self.0.downgrade(), self.1.downgrade())
    }
}

impl<T: Upgrade, E: Upgrade> Upgrade for Result<T, E> {
    type New = Result<T::New, E::New>;
    fn upgrade(self) -> Self::New {
        self.map(Upgrade::upgrade).map_err(Upgrade::upgrade)
    }
}

/// Both directions for types whose shape did not change between `$old` and `$new`:
/// `record Name { field, .. }`, and `variant Name { Case, Case(payload), .. }` for enums and
/// variants alike. `upgrade variant` and `upgrade record` give only the upgrade, for a variant
/// that gained cases since (and the records holding it): the host never sends those to a plugin.
/// `downgrade record` gives only the downgrade, for a request that gained fields since (the
/// older plugin is not given them; it never sends the record back).
macro_rules! same_shape {
    ($old:ident => $new:ident;) => {};
    ($old:ident => $new:ident; downgrade record $name:ident { $($field:ident),* $(,)? } $($rest:tt)*) => {
        impl $crate::bindings::adapt::Downgrade<$old::$name> for $new::$name {
            fn downgrade(&self) -> $old::$name {
                $old::$name {
                    $($field: $crate::bindings::adapt::Downgrade::downgrade(&self.$field)),*
                }
            }
        }
        same_shape!($old => $new; $($rest)*);
    };
    ($old:ident => $new:ident; upgrade record $name:ident { $($field:ident),* $(,)? } $($rest:tt)*) => {
        impl $crate::bindings::adapt::Upgrade for $old::$name {
            type New = $new::$name;
            fn upgrade(self) -> Self::New {
                $new::$name {
                    $($field: $crate::bindings::adapt::Upgrade::upgrade(self.$field)),*
                }
            }
        }
        same_shape!($old => $new; $($rest)*);
    };
    ($old:ident => $new:ident; upgrade variant $name:ident { $($case:ident $(($payload:ident))?),* $(,)? } $($rest:tt)*) => {
        impl $crate::bindings::adapt::Upgrade for $old::$name {
            type New = $new::$name;
            fn upgrade(self) -> Self::New {
                match self {
                    $($old::$name::$case $(($payload))? => $new::$name::$case
                        $(($crate::bindings::adapt::Upgrade::upgrade($payload)))?),*
                }
            }
        }
        same_shape!($old => $new; $($rest)*);
    };
    ($old:ident => $new:ident; record $name:ident { $($field:ident),* $(,)? } $($rest:tt)*) => {
        impl $crate::bindings::adapt::Upgrade for $old::$name {
            type New = $new::$name;
            fn upgrade(self) -> Self::New {
                $new::$name {
                    $($field: $crate::bindings::adapt::Upgrade::upgrade(self.$field)),*
                }
            }
        }
        impl $crate::bindings::adapt::Downgrade<$old::$name> for $new::$name {
            fn downgrade(&self) -> $old::$name {
                $old::$name {
                    $($field: $crate::bindings::adapt::Downgrade::downgrade(&self.$field)),*
                }
            }
        }
        same_shape!($old => $new; $($rest)*);
    };
    ($old:ident => $new:ident; variant $name:ident { $($case:ident $(($payload:ident))?),* $(,)? } $($rest:tt)*) => {
        impl $crate::bindings::adapt::Upgrade for $old::$name {
            type New = $new::$name;
            fn upgrade(self) -> Self::New {
                match self {
                    $($old::$name::$case $(($payload))? => $new::$name::$case
                        $(($crate::bindings::adapt::Upgrade::upgrade($payload)))?),*
                }
            }
        }
        impl $crate::bindings::adapt::Downgrade<$old::$name> for $new::$name {
            fn downgrade(&self) -> $old::$name {
                match self {
                    $($new::$name::$case $(($payload))? => $old::$name::$case
                        $(($crate::bindings::adapt::Downgrade::downgrade($payload)))?),*
                }
            }
        }
        same_shape!($old => $new; $($rest)*);
    };
}

pub(crate) use same_shape;

/// The types contracts 0.1.0 and 0.2.0 have in the same shape, as they map to the newest: one
/// list for both version modules (each adds what is its own, e.g. 0.2.0's `statement-line`).
macro_rules! before_0_3_0_shapes {
    ($old:ident => $new:ident) => {
        $crate::bindings::adapt::same_shape! { $old => $new;
            record Money { minor, currency }
            record HttpRequest { method, url, headers, body }
            record HttpResponse { status, headers, body }
            record HttpAnswer { status, headers, body }
            record InboundRequest { kind, method, path, query, headers, body }
            record Card { number, expiry_month, expiry_year, cvc, holder_name }
            record Address { country, state, city, line1, line2, postal_code }
            record Customer { id, email, first_name, last_name, phone, ip, billing, shipping }
            downgrade record PaymentRequest {
                order_no, amount, method, flow, subject, description, customer, card, language,
                return_url, notify_url, expires_at,
            }
            record FormPost { url, fields }
            record Failure { code, message }
            record PaymentUpdate {
                order_no, channel_txn_id, status, amount, paid_at, failure, channel_status,
            }
            record PaymentContext { order_no, amount, method, flow, channel_txn_id }
            record PaymentOutcome { update, action }
            record RefundRequest {
                refund_no, order_no, channel_txn_id, order_amount, refund_amount, reason, notify_url,
            }
            record RefundUpdate {
                refund_no, order_no, channel_refund_id, status, amount, failure, channel_status,
            }
            downgrade record QueryRequest { order_no, channel_txn_id, amount }
            record UnverifiedClaim { order_no, claimed_status }
            upgrade record CallbackOutcome { verdict, ack_accepted, ack_rejected }
            record RouteContext { amount, method, flow, country, card_bin }
            record RouteQuote { score, fee }
            record ChannelInfo {
                id, name, version, contract_version, methods, flows, currencies, countries, keys,
                settings, endpoints, supports_refund, supports_partial_refund, supports_statement,
            }
            variant HttpMethod { Get, Post, Put, Patch, Delete }
            variant InboundKind { Notify, BrowserReturn }
            variant CheckoutFlow { DirectCard, Redirect, QrCode }
            variant PaymentStatus {
                Pending, RequiresAction, Paid, Failed, Closed, Refunded, PartiallyRefunded, Chargeback,
            }
            variant RefundStatus { Pending, Succeeded, Failed }
            variant StatementEntryKind { Payment, Refund, Chargeback, Fee, Adjustment }
            variant PaymentStart { Call(request), Action(action) }
            variant NextAction { None, Redirect(url), PostForm(form), QrCode(content), Wait }
            upgrade variant CallbackEvent { Payment(update), Refund(update) }
            upgrade variant CallbackVerdict { Verified(event), Unverified(claim), Rejected(error) }
            variant StatementStep { Document(bytes), Follow(request) }
            variant ChannelError {
                BadSignature(why), Malformed(why), Upstream(why), Config(why), Unsupported(why),
                Key(why), Internal(why),
            }
        }
    };
}

pub(crate) use before_0_3_0_shapes;
