//! Which SIMD instruction sets a kernel test compares with the scalar reference, and the check
//! that the sets a CI runner is expected to have are really there.

use tandem::quant::simd::{available, Isa};

/// The instruction sets this CPU has (scalar included), printed under `test`'s name: the test
/// compares each of them with the scalar reference, and only those.
///
/// `TANDEM_EXPECT_ISA` (names as [`Isa::name`] spells them, comma-separated) lists sets that
/// must be among them: `.ci/run` sets it, so a runner that lacks one fails instead of passing
/// with those kernels untested.
pub fn tested(test: &str) -> Vec<Isa> {
    let isas = available();
    let names: Vec<&str> = isas.iter().map(|i| i.name()).collect();
    eprintln!("{test}: instruction sets compared: {}", names.join(", "));
    if let Ok(expect) = std::env::var("TANDEM_EXPECT_ISA") {
        for want in expect.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            assert!(
                names.contains(&want),
                "TANDEM_EXPECT_ISA names {want}, but this CPU has only {names:?}: its kernels \
                 would go untested"
            );
        }
    }
    isas
}
