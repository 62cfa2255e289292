//! A received/sent pair, named, for the many places that count both
//! directions of one series.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, SeqAccess, Visitor};
use serde::ser::SerializeTuple;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Received and sent, from the point of view of the series counted (an
/// interface, a device). Serialized as the 2-tuple `(rx, tx)`, exactly as the
/// `[rx, tx]` arrays it replaced: two varints under postcard, `[rx, tx]` in
/// JSON, so state files and answers keep their bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct RxTx<T> {
    pub rx: T,
    pub tx: T,
}

impl<T> RxTx<T> {
    pub const fn new(rx: T, tx: T) -> Self {
        Self { rx, tx }
    }

    /// Both values through `f`.
    pub fn map<U>(self, mut f: impl FnMut(T) -> U) -> RxTx<U> {
        RxTx {
            rx: f(self.rx),
            tx: f(self.tx),
        }
    }

    /// Both directions paired with `other`'s, through `f`.
    pub fn zip_with<U, V>(self, other: RxTx<U>, mut f: impl FnMut(T, U) -> V) -> RxTx<V> {
        RxTx {
            rx: f(self.rx, other.rx),
            tx: f(self.tx, other.tx),
        }
    }
}

impl RxTx<u64> {
    pub const ZERO: Self = Self::new(0, 0);

    pub fn saturating_add(self, other: Self) -> Self {
        self.zip_with(other, u64::saturating_add)
    }

    pub fn saturating_sub(self, other: Self) -> Self {
        self.zip_with(other, u64::saturating_sub)
    }
}

impl<T: Serialize> Serialize for RxTx<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut tuple = serializer.serialize_tuple(2)?;
        tuple.serialize_element(&self.rx)?;
        tuple.serialize_element(&self.tx)?;
        tuple.end()
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for RxTx<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_tuple(2, PairVisitor(PhantomData))
    }
}

struct PairVisitor<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de>> Visitor<'de> for PairVisitor<T> {
    type Value = RxTx<T>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a pair (received, sent)")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RxTx<T>, A::Error> {
        let rx = seq
            .next_element()?
            .ok_or_else(|| de::Error::invalid_length(0, &self))?;
        let tx = seq
            .next_element()?
            .ok_or_else(|| de::Error::invalid_length(1, &self))?;
        Ok(RxTx { rx, tx })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pair_serializes_as_the_rx_tx_array_it_replaced() {
        let pair = RxTx::new(300u64, 5);
        let array: [u64; 2] = [300, 5];
        let bytes = postcard::to_allocvec(&pair).unwrap();
        assert_eq!(bytes, postcard::to_allocvec(&array).unwrap());
        assert_eq!(postcard::from_bytes::<RxTx<u64>>(&bytes).unwrap(), pair);
        let json = serde_json::to_string(&pair).unwrap();
        assert_eq!(json, serde_json::to_string(&array).unwrap());
        assert_eq!(serde_json::from_str::<RxTx<u64>>(&json).unwrap(), pair);
        let signed = RxTx::new(-3i64, 7);
        assert_eq!(
            postcard::to_allocvec(&signed).unwrap(),
            postcard::to_allocvec(&[-3i64, 7]).unwrap()
        );
    }

    #[test]
    fn a_pair_short_of_a_value_is_refused() {
        assert!(serde_json::from_str::<RxTx<u64>>("[1]").is_err());
        assert!(serde_json::from_str::<RxTx<u64>>("[1, 2, 3]").is_err());
    }
}
