//! The generator behind backoff jitter.

/// `SplitMix64`: a tiny, fast generator, good enough to spread backoffs (not for anything that
/// needs unpredictability).
#[derive(Debug, Clone, Copy)]
pub(super) struct SplitMix64(u64);

impl SplitMix64 {
    /// An item's own generator: the batch's seed mixed with the item's index, so items that
    /// fail together back off by different amounts.
    pub(super) fn for_item(seed: u64, index: usize) -> Self {
        let mut mixer = SplitMix64(seed ^ index as u64);
        SplitMix64(mixer.next_u64())
    }

    pub(super) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    // The top 53 bits fit an f64's mantissa exactly.
    #[allow(clippy::cast_precision_loss)]
    pub(super) fn next_unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1_u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_get_different_generators() {
        let a = SplitMix64::for_item(9, 0).next_u64();
        let b = SplitMix64::for_item(9, 1).next_u64();
        let c = SplitMix64::for_item(10, 0).next_u64();
        assert!(a != b && a != c && b != c);
    }

    #[test]
    fn unit_is_in_range() {
        let mut rng = SplitMix64(0);
        assert!(
            (0..10_000)
                .map(|_| rng.next_unit())
                .all(|u| (0.0..1.0).contains(&u))
        );
    }
}
