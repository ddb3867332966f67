//! The sampler chain: repetition penalty → top-k → top-p → min-p → temperature → draw.
//!
//! The order follows llama.cpp's default chain, so the same flags mean the same thing in both
//! tools. A temperature of 0 (or below) is greedy: the largest logit, the lowest id on a tie.

/// Sampling parameters. The defaults are llama.cpp's.
#[derive(Clone, Debug, PartialEq)]
pub struct SamplerConfig {
    /// Softmax temperature; `<= 0` means greedy.
    pub temperature: f32,
    /// Keep only the `top_k` most likely tokens; 0 disables.
    pub top_k: usize,
    /// Keep the smallest set of tokens whose probability reaches `top_p`; 1 disables.
    pub top_p: f32,
    /// Drop tokens less likely than `min_p` times the most likely one; 0 disables.
    pub min_p: f32,
    /// Divide positive (multiply negative) logits of recently seen tokens by this; 1 disables.
    pub repeat_penalty: f32,
    /// How many of the most recent tokens the repetition penalty looks at.
    pub repeat_last_n: usize,
    /// The random seed; the same seed and inputs give the same tokens.
    pub seed: u64,
}

impl Default for SamplerConfig {
    fn default() -> Self {
        SamplerConfig {
            temperature: 0.8,
            top_k: 40,
            top_p: 0.95,
            min_p: 0.05,
            repeat_penalty: 1.0,
            repeat_last_n: 64,
            seed: 0x5EED,
        }
    }
}

/// The float sampling parameters and the values each accepts. The one check shared by the command
/// line, the REPL's `/set` and (later) the server's JSON, so that all three refuse the same values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Param {
    Temperature,
    TopP,
    MinP,
    RepeatPenalty,
}

impl Param {
    /// The name users type in the REPL and JSON (`--` and dashes on the command line).
    pub fn name(self) -> &'static str {
        match self {
            Param::Temperature => "temp",
            Param::TopP => "top_p",
            Param::MinP => "min_p",
            Param::RepeatPenalty => "repeat_penalty",
        }
    }

    /// `v` if it is a finite value in this parameter's range, else a message saying what is.
    /// NaN and infinities never pass: NaN compares false everywhere in the sampler, so it would
    /// silently pick an arbitrary token.
    pub fn check(self, v: f32) -> Result<f32, String> {
        let (ok, range) = match self {
            Param::Temperature => ((0.0..=100.0).contains(&v), "a number from 0 to 100"),
            Param::TopP | Param::MinP => ((0.0..=1.0).contains(&v), "a number from 0 to 1"),
            // 0 would divide logits by zero; below it would reward repeats.
            Param::RepeatPenalty => (v > 0.0 && v <= 100.0, "a number above 0, at most 100"),
        };
        if ok {
            Ok(v)
        } else {
            Err(format!("{} must be {range}, not {v}", self.name()))
        }
    }
}

impl SamplerConfig {
    /// Checks every parameter (integers take any value: 0 disables top-k and the penalty window,
    /// and values above the vocabulary or history size act as "all").
    pub fn validate(&self) -> Result<(), String> {
        Param::Temperature.check(self.temperature)?;
        Param::TopP.check(self.top_p)?;
        Param::MinP.check(self.min_p)?;
        Param::RepeatPenalty.check(self.repeat_penalty)?;
        Ok(())
    }

    /// Greedy decoding.
    pub fn greedy() -> Self {
        SamplerConfig {
            temperature: 0.0,
            ..Default::default()
        }
    }
}

/// A seeded sampler. Holds the random state, so one instance serves one generation stream.
pub struct Sampler {
    pub config: SamplerConfig,
    rng: Xoshiro256,
    /// (token id, logit) scratch, reused across calls to avoid a vocab-sized allocation per token.
    cand: Vec<(u32, f32)>,
}

impl Sampler {
    pub fn new(config: SamplerConfig) -> Self {
        let rng = Xoshiro256::new(config.seed);
        Sampler {
            config,
            rng,
            cand: Vec::new(),
        }
    }

    /// Picks the next token from `logits` (`[n_vocab]`), given the tokens so far in `history`.
    pub fn sample(&mut self, logits: &[f32], history: &[u32]) -> u32 {
        let c = &self.config;
        self.cand.clear();
        self.cand
            .extend(logits.iter().enumerate().map(|(i, &l)| (i as u32, l)));
        if c.repeat_penalty != 1.0 && c.repeat_last_n > 0 {
            let recent = &history[history.len().saturating_sub(c.repeat_last_n)..];
            let mut seen = std::collections::HashSet::with_capacity(recent.len());
            for &t in recent {
                if let Some(cand) = self.cand.get_mut(t as usize).filter(|_| seen.insert(t)) {
                    cand.1 = if cand.1 > 0.0 {
                        cand.1 / c.repeat_penalty
                    } else {
                        cand.1 * c.repeat_penalty
                    };
                }
            }
        }
        if c.temperature <= 0.0 {
            return argmax(&self.cand);
        }
        // Sorted by logit, descending; ties keep the lower id first.
        let by_logit = |a: &(u32, f32), b: &(u32, f32)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
        if c.top_k > 0 && c.top_k < self.cand.len() {
            self.cand.select_nth_unstable_by(c.top_k - 1, by_logit);
            self.cand.truncate(c.top_k);
        }
        self.cand.sort_unstable_by(by_logit);

        // Probabilities at temperature 1 decide the top-p and min-p cuts, as in llama.cpp.
        let probs = softmax(self.cand.iter().map(|c| c.1), 1.0);
        let mut keep = probs.len();
        if c.top_p < 1.0 {
            let mut cum = 0.0;
            for (i, p) in probs.iter().enumerate() {
                cum += p;
                if cum >= c.top_p as f64 {
                    keep = keep.min(i + 1);
                    break;
                }
            }
        }
        if c.min_p > 0.0 {
            let floor = probs[0] * c.min_p as f64;
            keep = keep.min(probs.iter().take_while(|&&p| p >= floor).count().max(1));
        }
        self.cand.truncate(keep);

        let probs = softmax(self.cand.iter().map(|c| c.1), c.temperature);
        let mut r = self.rng.next_f64();
        for (cand, p) in self.cand.iter().zip(&probs) {
            if r < *p {
                return cand.0;
            }
            r -= p;
        }
        // Rounding left a sliver of probability unassigned: it belongs to the last candidate.
        self.cand.last().map_or(0, |c| c.0)
    }
}

/// The id of the largest logit; the lowest id wins a tie.
fn argmax(cand: &[(u32, f32)]) -> u32 {
    let mut best = (0u32, f32::NEG_INFINITY);
    for &(i, l) in cand {
        if l > best.1 {
            best = (i, l);
        }
    }
    best.0
}

/// Softmax of `logits / temperature`, in f64 so that long tails sum to 1 accurately.
fn softmax(logits: impl Iterator<Item = f32> + Clone, temperature: f32) -> Vec<f64> {
    let t = temperature as f64;
    let max = logits.clone().fold(f32::NEG_INFINITY, f32::max) as f64;
    let e: Vec<f64> = logits.map(|l| ((l as f64 - max) / t).exp()).collect();
    let sum: f64 = e.iter().sum();
    e.into_iter().map(|v| v / sum).collect()
}

/// xoshiro256** seeded through splitmix64. Written out (rather than taken from `rand`) so a seed
/// gives the same tokens in every tandem version, whatever a dependency's generator becomes.
struct Xoshiro256([u64; 4]);

impl Xoshiro256 {
    fn new(seed: u64) -> Self {
        let mut z = seed;
        let mut next = || {
            z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut x = z;
            x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            x ^ (x >> 31)
        };
        Xoshiro256([next(), next(), next(), next()])
    }

    fn next_u64(&mut self) -> u64 {
        let s = &mut self.0;
        let out = s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        out
    }

    /// Uniform in [0, 1) with 53 random bits.
    fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn logits() -> Vec<f32> {
        vec![1.0, 3.0, 2.5, -1.0, 3.0, 0.5, 2.9, -4.0]
    }

    #[test]
    fn validate_refuses_non_finite_and_out_of_range_values() {
        assert_eq!(SamplerConfig::default().validate(), Ok(()));
        assert_eq!(SamplerConfig::greedy().validate(), Ok(()));
        let bad = [
            (
                Param::Temperature,
                f32::NAN,
                "temp must be a number from 0 to 100, not NaN",
            ),
            (
                Param::Temperature,
                -1.0,
                "temp must be a number from 0 to 100, not -1",
            ),
            (
                Param::Temperature,
                f32::INFINITY,
                "temp must be a number from 0 to 100, not inf",
            ),
            (
                Param::TopP,
                f32::NAN,
                "top_p must be a number from 0 to 1, not NaN",
            ),
            (
                Param::TopP,
                1.5,
                "top_p must be a number from 0 to 1, not 1.5",
            ),
            (
                Param::MinP,
                2.0,
                "min_p must be a number from 0 to 1, not 2",
            ),
            (
                Param::MinP,
                -0.1,
                "min_p must be a number from 0 to 1, not -0.1",
            ),
            (
                Param::RepeatPenalty,
                0.0,
                "repeat_penalty must be a number above 0, at most 100, not 0",
            ),
            (
                Param::RepeatPenalty,
                f32::NAN,
                "repeat_penalty must be a number above 0, at most 100, not NaN",
            ),
            (
                Param::RepeatPenalty,
                -2.0,
                "repeat_penalty must be a number above 0, at most 100, not -2",
            ),
        ];
        for (param, v, says) in bad {
            let mut c = SamplerConfig::default();
            match param {
                Param::Temperature => c.temperature = v,
                Param::TopP => c.top_p = v,
                Param::MinP => c.min_p = v,
                Param::RepeatPenalty => c.repeat_penalty = v,
            }
            assert_eq!(c.validate(), Err(says.to_string()));
            assert_eq!(param.check(v), Err(says.to_string()));
        }
        for (param, v) in [
            (Param::Temperature, 0.0),
            (Param::Temperature, 100.0),
            (Param::TopP, 0.0),
            (Param::MinP, 1.0),
            (Param::RepeatPenalty, 0.5),
        ] {
            assert_eq!(param.check(v), Ok(v));
        }
    }

    #[test]
    fn greedy_takes_the_largest_and_the_lowest_id_on_ties() {
        let mut s = Sampler::new(SamplerConfig::greedy());
        assert_eq!(s.sample(&logits(), &[]), 1);
    }

    #[test]
    fn same_seed_same_tokens_and_different_seed_differs() {
        let cfg = SamplerConfig {
            temperature: 1.5,
            top_k: 0,
            top_p: 1.0,
            min_p: 0.0,
            ..Default::default()
        };
        let run = |seed| {
            let mut s = Sampler::new(SamplerConfig {
                seed,
                ..cfg.clone()
            });
            (0..200)
                .map(|_| s.sample(&logits(), &[]))
                .collect::<Vec<_>>()
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
    }

    #[test]
    fn top_k_keeps_only_the_k_best() {
        let cfg = SamplerConfig {
            temperature: 5.0,
            top_k: 2,
            top_p: 1.0,
            min_p: 0.0,
            ..Default::default()
        };
        let mut s = Sampler::new(cfg);
        for _ in 0..500 {
            let t = s.sample(&logits(), &[]);
            assert!(t == 1 || t == 4, "top-2 produced {t}");
        }
    }

    #[test]
    fn top_p_cuts_the_tail() {
        // Probabilities ~ [0.665, 0.245, 0.09]: top-p 0.8 keeps the first two.
        let l = [2.0f32, 1.0, 0.0];
        let cfg = SamplerConfig {
            temperature: 1.0,
            top_k: 0,
            top_p: 0.8,
            min_p: 0.0,
            ..Default::default()
        };
        let mut s = Sampler::new(cfg);
        let mut seen = [0usize; 3];
        for _ in 0..2000 {
            seen[s.sample(&l, &[]) as usize] += 1;
        }
        assert_eq!(seen[2], 0);
        assert!(seen[1] > 300, "{seen:?}");
    }

    #[test]
    fn min_p_drops_unlikely_tokens() {
        // p(2)/p(0) = e^-3 ≈ 0.05 < 0.1, p(1)/p(0) = e^-1 ≈ 0.37.
        let l = [3.0f32, 2.0, 0.0];
        let cfg = SamplerConfig {
            temperature: 1.0,
            top_k: 0,
            top_p: 1.0,
            min_p: 0.1,
            ..Default::default()
        };
        let mut s = Sampler::new(cfg);
        for _ in 0..2000 {
            assert_ne!(s.sample(&l, &[]), 2);
        }
    }

    #[test]
    fn sampling_frequencies_follow_the_softmax() {
        // Two tokens with logits ln 3 and 0 at temperature 1: p = 0.75 / 0.25.
        let l = [3f32.ln(), 0.0];
        let cfg = SamplerConfig {
            temperature: 1.0,
            top_k: 0,
            top_p: 1.0,
            min_p: 0.0,
            ..Default::default()
        };
        let mut s = Sampler::new(cfg);
        let n = 20_000;
        let zeros = (0..n).filter(|_| s.sample(&l, &[]) == 0).count();
        // Binomial sd = sqrt(n * 0.75 * 0.25) ≈ 61; allow 5 sd.
        assert!((zeros as i64 - 15_000).abs() < 310, "{zeros}");
    }

    #[test]
    fn repetition_penalty_follows_llamacpp() {
        // Token 1 (3.0) seen: 3.0 / 2 = 1.5 < 2.9, so greedy moves to token 4 (3.0, unseen).
        // Token 4 seen too: 1.5 each, token 6 (2.9) wins. Negative logits are multiplied.
        let cfg = SamplerConfig {
            temperature: 0.0,
            repeat_penalty: 2.0,
            ..Default::default()
        };
        let mut s = Sampler::new(cfg);
        assert_eq!(s.sample(&logits(), &[1]), 4);
        assert_eq!(s.sample(&logits(), &[1, 4, 1]), 6);
        assert_eq!(s.sample(&[-1.0, -1.5], &[0]), 1); // -2.0 < -1.5
                                                      // Only the last `repeat_last_n` tokens count.
        let cfg = SamplerConfig {
            temperature: 0.0,
            repeat_penalty: 2.0,
            repeat_last_n: 1,
            ..Default::default()
        };
        assert_eq!(Sampler::new(cfg).sample(&logits(), &[1, 5]), 1);
    }
}
