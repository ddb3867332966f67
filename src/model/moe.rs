//! The MoE router: top-k expert choice and its weights.

/// The experts chosen for one token, largest weight first, and their weights (summing to 1).
#[derive(Clone, Debug, PartialEq)]
pub struct Route {
    pub experts: Vec<u32>,
    pub weights: Vec<f32>,
}

/// Picks the `k` largest router logits (`[n_expert]`; the lower id wins a tie) and softmaxes over
/// those `k` alone. This equals Mixtral's softmax over all experts renormalised over the top k.
pub fn route(logits: &[f32], k: usize) -> Route {
    let mut ids: Vec<u32> = (0..logits.len() as u32).collect();
    ids.sort_by(|&a, &b| {
        logits[b as usize]
            .total_cmp(&logits[a as usize])
            .then(a.cmp(&b))
    });
    ids.truncate(k);
    let max = logits[ids[0] as usize];
    let e: Vec<f64> = ids
        .iter()
        .map(|&i| ((logits[i as usize] - max) as f64).exp())
        .collect();
    let sum: f64 = e.iter().sum();
    Route {
        experts: ids,
        weights: e.iter().map(|v| (v / sum) as f32).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top2_softmax_over_the_selected_pair() {
        let r = route(&[0.1, 2.0, -1.0, 1.0, 2.0], 2);
        assert_eq!(r.experts, vec![1, 4]); // tie at 2.0: lower id first
        assert!((r.weights[0] - 0.5).abs() < 1e-7);
        let r = route(&[0.0, 1.0, 3.0], 2);
        assert_eq!(r.experts, vec![2, 1]);
        let w = 1.0 / (1.0 + (-2.0f64).exp());
        assert!((r.weights[0] as f64 - w).abs() < 1e-7);
        // Equal to the full softmax renormalised over the top 2.
        let full: Vec<f64> = [0.0f64, 1.0, 3.0].iter().map(|v| v.exp()).collect();
        assert!((r.weights[1] as f64 - full[1] / (full[1] + full[2])).abs() < 1e-7);
    }
}
