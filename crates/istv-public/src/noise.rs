//! The mechanism: discrete Laplace noise from OpenDP, calibrated to an
//! epsilon at sensitivity 1, and the source of its draws.

use crate::ReleaseError;
use opendp::domains::{AtomDomain, VectorDomain};
use opendp::measurements::make_laplace;
use opendp::measures::MaxDivergence;
use opendp::metrics::L1Distance;

/// The L1 sensitivity of a release's vector of counts: adding or removing
/// one record changes exactly one borough x month x method cell by 1.
pub const SENSITIVITY: i64 = 1;

/// The largest epsilon accepted: beyond it the noise is too small to
/// protect anything (at 10, nine draws in ten are 0).
pub const MAX_EPSILON: f64 = 10.0;

/// The discrete Laplace mechanism (the two-sided geometric distribution,
/// `P(X = x)` proportional to `exp(-|x| / scale)`) on a vector of counts,
/// with `scale = SENSITIVITY / epsilon`: epsilon-differentially private
/// for records added or removed (Ghosh, Roughgarden and Sundararajan 2012;
/// sampled exactly, as Canonne, Kamath and Steinke 2020 describe, by
/// OpenDP's `make_laplace`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DiscreteLaplace {
    epsilon: f64,
    scale: f64,
}

impl DiscreteLaplace {
    /// The mechanism's name in a release.
    pub const NAME: &'static str = "discrete_laplace";

    /// The mechanism for `epsilon` (above 0, at most [`MAX_EPSILON`]),
    /// checked against OpenDP's privacy map: the epsilon it proves for
    /// sensitivity 1 must not exceed the one asked for by more than
    /// floating-point rounding.
    pub fn new(epsilon: f64) -> Result<DiscreteLaplace, ReleaseError> {
        if !(epsilon.is_finite() && epsilon > 0.0 && epsilon <= MAX_EPSILON) {
            return Err(ReleaseError::Epsilon(epsilon));
        }
        let mechanism = DiscreteLaplace {
            epsilon,
            scale: SENSITIVITY as f64 / epsilon,
        };
        let proven = mechanism.proven_epsilon(SENSITIVITY)?;
        if proven > epsilon * (1.0 + 1e-9) {
            return Err(ReleaseError::Library(format!(
                "the privacy map gives epsilon {proven} for scale {}, above {epsilon}",
                mechanism.scale
            )));
        }
        Ok(mechanism)
    }

    /// The epsilon asked for.
    pub fn epsilon(&self) -> f64 {
        self.epsilon
    }

    /// The noise scale, `SENSITIVITY / epsilon`.
    pub fn scale(&self) -> f64 {
        self.scale
    }

    /// The epsilon OpenDP's privacy map proves for inputs whose counts
    /// differ by at most `sensitivity` in L1 distance.
    pub fn proven_epsilon(&self, sensitivity: i64) -> Result<f64, ReleaseError> {
        measurement(self.scale)?
            .map(&sensitivity)
            .map_err(|e| ReleaseError::Library(e.to_string()))
    }

    /// The variance of one draw: `2a / (1 - a)^2` with `a = exp(-1/scale)`.
    pub fn variance(&self) -> f64 {
        let a = (-1.0 / self.scale).exp();
        2.0 * a / ((1.0 - a) * (1.0 - a))
    }

    /// The release parameters, as stored and published with the release.
    pub fn parameters(&self) -> serde_json::Value {
        serde_json::json!({
            "sensitivity": SENSITIVITY,
            "scale": self.scale,
            "neighbouring": "one record added or removed",
            "library": "opendp 0.16 make_laplace on vector_domain(atom_domain(i64)), l1_distance",
            "post_processing": "negative values published as 0",
        })
    }
}

type Counts = opendp::core::Measurement<
    VectorDomain<AtomDomain<i64>>,
    L1Distance<i64>,
    MaxDivergence,
    Vec<i64>,
>;

fn measurement(scale: f64) -> Result<Counts, ReleaseError> {
    make_laplace(
        VectorDomain::new(AtomDomain::<i64>::default()),
        L1Distance::<i64>::default(),
        scale,
        None,
    )
    .map_err(|e| ReleaseError::Library(e.to_string()))
}

/// Where a release's noisy counts come from: [`OpenDp`] in service; tests
/// inject a source whose output they know.
pub trait NoiseSource {
    /// `counts` with the mechanism's noise added, one draw per count.
    fn noisy(
        &mut self,
        mechanism: &DiscreteLaplace,
        counts: &[i64],
    ) -> Result<Vec<i64>, ReleaseError>;
}

/// OpenDP's sampler, drawing from its random number generator.
#[derive(Debug, Clone, Copy, Default)]
pub struct OpenDp;

impl NoiseSource for OpenDp {
    fn noisy(
        &mut self,
        mechanism: &DiscreteLaplace,
        counts: &[i64],
    ) -> Result<Vec<i64>, ReleaseError> {
        measurement(mechanism.scale)?
            .invoke(&counts.to_vec())
            .map_err(|e| ReleaseError::Library(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scale_is_sensitivity_over_epsilon_and_the_map_proves_epsilon() {
        for eps in [0.1, 0.25, 0.5, 1.0, 2.0, 10.0] {
            let m = DiscreteLaplace::new(eps).unwrap();
            assert_eq!(m.scale(), 1.0 / eps);
            let proven = m.proven_epsilon(1).unwrap();
            assert!((proven - eps).abs() <= eps * 1e-12, "{eps}: {proven}");
            // Two records' difference costs twice as much.
            let two = m.proven_epsilon(2).unwrap();
            assert!((two - 2.0 * eps).abs() <= eps * 1e-12, "{eps}: {two}");
        }
        // a = e^-1 at epsilon 1: 2a / (1 - a)^2.
        let a = (-1.0f64).exp();
        assert_eq!(
            DiscreteLaplace::new(1.0).unwrap().variance(),
            2.0 * a / ((1.0 - a) * (1.0 - a))
        );
    }

    #[test]
    fn epsilons_outside_the_range_are_refused() {
        for eps in [0.0, -1.0, f64::NAN, f64::INFINITY, 10.5] {
            assert!(
                matches!(DiscreteLaplace::new(eps), Err(ReleaseError::Epsilon(_))),
                "{eps}"
            );
        }
    }

    /// `P(X = x)` of the discrete Laplace with `a = exp(-epsilon)`:
    /// `(1 - a) / (1 + a) * a^|x|`, written out independently of OpenDP.
    fn pmf(a: f64, x: i64) -> f64 {
        (1.0 - a) / (1.0 + a) * a.powi(x.unsigned_abs() as i32)
    }

    /// 100,000 draws of OpenDP's sampler at epsilon 0.5 (scale 2) against
    /// the distribution's mean (0), variance and P(X = 0), each computed
    /// from the probability mass function above. Each check allows 6
    /// standard errors of its estimate; with 100,000 draws the estimates
    /// are normal to a close approximation, so a correct sampler fails a
    /// check with probability about 2e-9 (all three together under 1e-8).
    /// A sampler at the wrong scale fails: at scale 2 the variance is 7.84
    /// and its standard error 0.056; at scale 1 (or 4) it would be 1.84
    /// (or 31.8).
    #[test]
    fn draws_have_the_discrete_laplace_mean_variance_and_mass_at_zero() {
        let eps = 0.5;
        let m = DiscreteLaplace::new(eps).unwrap();
        let n = 100_000usize;
        let draws = OpenDp.noisy(&m, &vec![0; n]).unwrap();
        assert_eq!(draws.len(), n);
        let a = (-eps).exp();
        // Moments by summing the mass function far into the tails
        // (a^400 < 1e-86).
        let (mut var, mut m4) = (0.0, 0.0);
        for x in -400i64..=400 {
            let p = pmf(a, x);
            var += p * (x * x) as f64;
            m4 += p * (x * x * x * x) as f64;
        }
        assert!((var - m.variance()).abs() < 1e-9 * var);
        let nf = n as f64;
        let mean: f64 = draws.iter().map(|&x| x as f64).sum::<f64>() / nf;
        let sample_var: f64 = draws.iter().map(|&x| (x as f64).powi(2)).sum::<f64>() / nf;
        let zeros = draws.iter().filter(|&&x| x == 0).count() as f64 / nf;
        let se_mean = (var / nf).sqrt();
        let se_var = ((m4 - var * var) / nf).sqrt();
        let p0 = pmf(a, 0);
        let se_p0 = (p0 * (1.0 - p0) / nf).sqrt();
        assert!(mean.abs() < 6.0 * se_mean, "mean {mean}, se {se_mean}");
        assert!(
            (sample_var - var).abs() < 6.0 * se_var,
            "variance {sample_var}, expected {var} +- {se_var}"
        );
        assert!(
            (zeros - p0).abs() < 6.0 * se_p0,
            "P(0) {zeros}, expected {p0} +- {se_p0}"
        );
        // Noise is added to the counts given.
        let shifted = OpenDp.noisy(&m, &[1_000_000]).unwrap()[0];
        assert!((shifted - 1_000_000).abs() < 200, "{shifted}");
    }
}
