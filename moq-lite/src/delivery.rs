//! Delivery policy shared by every protocol that serves this crate's model.
//!
//! A session of any protocol family (moq-lite here, IETF moq-transport in
//! `moq-transport-compat`) sends each group of a subscription on its own
//! unidirectional stream. How those streams compete for the connection is the
//! same policy whatever the wire format: [`stream_priority`] orders them, and
//! at most [`MAX_INFLIGHT_GROUPS`] are in flight per subscription.
//!
//! This module is pure: no I/O, no protocol messages.

/// Group streams one subscription may have in flight. A subscriber that
/// stops reading stops granting streams, and each waiting group pins its
/// data: past this, live subscriptions drop their oldest group (the newest
/// matter most) and ordered ones stop taking groups until one completes (the
/// cache then evicts what they miss). Sessions of other protocols on the
/// same model use the same bound.
pub const MAX_INFLIGHT_GROUPS: usize = 32;

/// The QUIC send priority of a group stream: subscriber priority first,
/// publisher priority to break ties, then newer groups first (older first when
/// the subscriber asked for ordered delivery). Higher is sent first.
///
/// The one policy for every protocol on this model: a protocol whose
/// subscriber priority runs the other way (IETF: lower first) passes it
/// inverted.
pub fn stream_priority(subscriber: u8, publisher: u8, sequence: u64, ordered: bool) -> i32 {
    // 8 + 8 + 15 bits: always positive in an i32. The sequence part wraps,
    // which only matters for groups 32768 apart, long expired by then.
    let age = (sequence & 0x7FFF) as i32;
    let age = if ordered { 0x7FFF - age } else { age };
    (i32::from(subscriber) << 23) | (i32::from(publisher) << 15) | age
}
