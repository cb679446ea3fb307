//! Typed wire codes: an enum per code space (message types, parameters,
//! error codes) with an `Unknown(u64)` arm, so a code from the network is
//! always representable and a `match` says which codes are handled.
//!
//! ```
//! moq_lite::wire_enum! {
//!     /// Colours on the wire.
//!     pub enum Colour {
//!         /// Red.
//!         Red = 0x01,
//!         /// Green.
//!         Green = 0x02,
//!     }
//! }
//!
//! assert_eq!(Colour::from(0x02), Colour::Green);
//! assert_eq!(Colour::from(0x07), Colour::Unknown(0x07));
//! assert_eq!(u64::from(Colour::Red), 0x01);
//! assert_eq!(Colour::Unknown(0x07).code(), 0x07);
//! ```

/// Defines a `Copy` enum of named wire codes plus `Unknown(u64)`, with
/// `From<u64>`, `From<Enum> for u64` and a `const fn code()`. Each code is
/// a literal and must appear once; `Unknown` should only hold codes that
/// have no name (`from` never builds `Unknown` for a named code).
#[macro_export]
macro_rules! wire_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $(
                $(#[$vmeta:meta])*
                $variant:ident = $code:literal
            ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        $vis enum $name {
            $(
                $(#[$vmeta])*
                $variant,
            )*
            /// A code without a name here, kept as it came.
            Unknown(u64),
        }

        impl $name {
            /// The code on the wire.
            pub const fn code(self) -> u64 {
                match self {
                    $($name::$variant => $code,)*
                    $name::Unknown(code) => code,
                }
            }
        }

        impl From<u64> for $name {
            fn from(code: u64) -> Self {
                match code {
                    $($code => $name::$variant,)*
                    other => $name::Unknown(other),
                }
            }
        }

        impl From<$name> for u64 {
            fn from(value: $name) -> u64 {
                value.code()
            }
        }
    };
}
