//! What a route to a broadcast costs, for choosing among routes.
//!
//! A relay that hears of one broadcast over several links keeps the
//! cheapest route: the lowest cold cost (what starting to pull it costs),
//! then the fewest hops. Costs add up along a route: each receiver adds the
//! price of the link it came over (moq-lite-06, shipped notes section 5).
//!
//! ```
//! use moq_lite::model::RouteCost;
//!
//! let local = RouteCost::LOCAL;
//! let over_one_link = local.plus(1);
//! assert_eq!(over_one_link, RouteCost { warm: 1, cold: 1 });
//! // Older wires say nothing of cost: the cold cost is unknown (the worst).
//! assert_eq!(RouteCost::UNKNOWN.plus(1).cold, RouteCost::MAX);
//! ```

/// A route's two costs. Lower wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RouteCost {
    /// The cost while the broadcast already flows to the announcer.
    pub warm: u64,
    /// The cost of starting to pull it.
    pub cold: u64,
}

impl RouteCost {
    /// The largest cost (a varint's largest value).
    pub const MAX: u64 = (1 << 62) - 1;

    /// A broadcast published where it is produced.
    pub const LOCAL: RouteCost = RouteCost { warm: 0, cold: 0 };

    /// A route learned over a wire without costs (before moq-lite-06, and
    /// IETF moq-transport): warm 0, cold unknown.
    pub const UNKNOWN: RouteCost = RouteCost {
        warm: 0,
        cold: Self::MAX,
    };

    /// This route one link further, `price` being the link's; saturating.
    pub fn plus(self, price: u64) -> RouteCost {
        RouteCost {
            warm: self.warm.saturating_add(price).min(Self::MAX),
            cold: self.cold.saturating_add(price).min(Self::MAX),
        }
    }
}

impl Default for RouteCost {
    /// [`RouteCost::LOCAL`].
    fn default() -> Self {
        Self::LOCAL
    }
}
