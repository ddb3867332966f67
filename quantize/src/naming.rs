//! `general.name`, `basename`, `finetune`, `version` and `size_label` as llama.cpp's converter
//! derives them (gguf-py `Metadata.get_model_id_components`, `id_to_title`, `size_label`): from
//! the model directory's name, e.g. `Mixtral-8x7B-Instruct-v0.1` → basename `Mixtral`, size
//! `8x7B`, finetune `Instruct`, version `v0.1`; and the size from the parameter count when the
//! name has none.

use crate::params::GeneralInfo;
use crate::plan::Planned;
use regex::Regex;
use std::collections::BTreeSet;

/// Parameter counts as gguf-py's writer measures them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ParamCount {
    pub total: u64,
    pub shared: u64,
    /// Parameters of one expert (summed over the expert tensors).
    pub expert: u64,
    pub expert_count: u64,
}

/// Counts the parameters of a plan: a tensor named `*_exps.*` with 3 dimensions holds
/// `ne[2]` experts.
pub fn count_params(plan: &[Planned]) -> ParamCount {
    let mut c = ParamCount::default();
    let (mut expert_sum, mut n_expert_tensors) = (0, 0);
    for p in plan {
        let size: u64 = p.ne.iter().product();
        if p.name.contains("_exps.") && p.ne.len() >= 3 {
            let n = p.ne[2].max(1);
            c.expert += size / n;
            expert_sum += n;
            n_expert_tensors += 1;
        } else {
            c.shared += size;
        }
        c.total += size;
    }
    c.expert_count = expert_sum.checked_div(n_expert_tensors).unwrap_or(0);
    c
}

/// `1.2B`, `295K`, `46.7B`: at least two significant digits.
fn rounded_notation(n: u64) -> String {
    let n = n as f64;
    let (scaled, suffix) = if n > 1e12 {
        (n * 1e-12, "T")
    } else if n > 1e9 {
        (n * 1e-9, "B")
    } else if n > 1e6 {
        (n * 1e-6, "M")
    } else {
        (n * 1e-3, "K")
    };
    let int_digits = format!("{}", scaled.round() as u64)
        .trim_start_matches('0')
        .len();
    let fix = 2usize.saturating_sub(int_digits);
    format!("{scaled:.fix$}{suffix}")
}

/// gguf-py's `size_label`: `8x7.2B` for MoE, `7.2B` otherwise.
pub fn size_label(c: &ParamCount) -> String {
    if c.expert_count > 0 {
        format!(
            "{}x{}",
            c.expert_count,
            rounded_notation(c.shared + c.expert)
        )
    } else {
        rounded_notation(c.total)
    }
}

/// gguf-py's `id_to_title`: words title-cased unless they have capitals or are versions.
pub fn id_to_title(s: &str) -> String {
    let version = Regex::new(r"^(v\d+(?:\.\d+)*|\d.*)$").expect("valid regex");
    s.trim()
        .replace('-', " ")
        .split_whitespace()
        .map(|w| {
            let lower = w.chars().any(char::is_lowercase) && !w.chars().any(char::is_uppercase);
            if lower && !version.is_match(w) {
                title(w)
            } else {
                w.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Python's `str.title()`: upper-case the first letter of each run of letters.
fn title(w: &str) -> String {
    let mut out = String::new();
    let mut prev_letter = false;
    for ch in w.chars() {
        if ch.is_alphabetic() {
            if prev_letter {
                out.extend(ch.to_lowercase());
            } else {
                out.extend(ch.to_uppercase());
            }
            prev_letter = true;
        } else {
            out.push(ch);
            prev_letter = false;
        }
    }
    out
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Kind {
    Basename,
    SizeLabel,
    Finetune,
    Version,
    Type,
}

/// The `general.*` naming keys from a directory name, with the size from `params` when the
/// name has none. `name` overrides `general.name` (the converter's `--model-name`).
pub fn general_info(dir_name: &str, name: Option<&str>, params: &ParamCount) -> GeneralInfo {
    let mut info = components(dir_name, params.total);
    info.name = name.map_or_else(|| id_to_title(dir_name), String::from);
    if info.size_label.is_none() && params.total > 0 {
        info.size_label = Some(size_label(params));
    }
    info
}

/// gguf-py's `get_model_id_components` for a name without an organisation part.
fn components(id: &str, total: u64) -> GeneralInfo {
    let mut info = GeneralInfo::default();
    if id.contains(' ') {
        return info;
    }
    let version = Regex::new(r"(?i)^(v|iter)?\d+([.]\d+)*$").expect("valid regex");
    let quant = Regex::new(r"(?i)^(i?q\d(_\w)*|b?fp?(16|32))$").expect("valid regex");
    let size =
        Regex::new(r"(?i)^(([A]|\d+[x])?\d+([._]\d+)?[KMBT][\d]?|small|mini|medium|large|x?xl)$")
            .expect("valid regex");
    let finetune = Regex::new(r"(?i)^(chat|instruct|vision|lora)$").expect("valid regex");
    let mut parts: Vec<String> = id
        .split('-')
        .filter(|p| !p.is_empty())
        .map(String::from)
        .collect();
    let mut kinds: Vec<BTreeSet<Kind>> = vec![BTreeSet::new(); parts.len()];
    for (i, part) in parts.iter_mut().enumerate() {
        if version.is_match(part) {
            kinds[i].insert(Kind::Version);
        } else if quant.is_match(part) {
            kinds[i].insert(Kind::Type);
            *part = part.to_uppercase();
        } else if i > 0 && size.is_match(part) {
            let mut p: Vec<char> = part.replace('_', ".").chars().collect();
            // bloom-7b1 notation: 7b1 → 7.1b.
            if p.last().is_some_and(char::is_ascii_digit) && p.len() >= 2 {
                let (d, s) = (p[p.len() - 1], p[p.len() - 2]);
                p.truncate(p.len() - 2);
                p.extend(['.', d, s]);
            }
            if p.len() > 1 && p[p.len() - 2].is_ascii_digit() {
                let last = p.len() - 1;
                if "kmbt".contains(p[last]) {
                    p[last] = p[last].to_ascii_uppercase();
                }
            }
            let mut text: String = p.iter().collect();
            if total != 0 {
                let (num, unit) = text.split_at(text.len() - 1);
                if let (Ok(v), Some(scale)) = (num.parse::<f64>(), " KMBT".find(unit)) {
                    let label = v * 1000f64.powi(scale as i32);
                    let total = total as f64;
                    if (label - total).abs() > (7.0 * total / 8.0).floor() {
                        // Likely a context length.
                        kinds[i].insert(Kind::Finetune);
                        text = format!("{num}{}", unit.to_lowercase());
                    }
                }
            }
            if kinds[i].is_empty() {
                kinds[i].insert(Kind::SizeLabel);
            }
            *part = text;
        } else if i > 0 && finetune.is_match(part) {
            kinds[i].insert(Kind::Finetune);
        }
    }
    // Word sizes (mini, large) give way to a numeric one.
    let numeric_size = parts
        .iter()
        .zip(&kinds)
        .any(|(p, k)| k.contains(&Kind::SizeLabel) && p.chars().any(|c| c.is_ascii_digit()));
    if numeric_size {
        for (p, k) in parts.iter().zip(kinds.iter_mut()) {
            if k.contains(&Kind::SizeLabel) && p.chars().all(char::is_alphabetic) {
                k.remove(&Kind::SizeLabel);
            }
        }
    }
    let mut at_start = true;
    for (p, k) in parts.iter().zip(kinds.iter_mut()) {
        let alpha_first = p.chars().next().is_some_and(char::is_alphabetic);
        if at_start && ((k.is_empty() && alpha_first) || k.contains(&Kind::Version)) {
            k.insert(Kind::Basename);
        } else {
            at_start = false;
            if k.is_empty() {
                k.insert(Kind::Finetune);
            }
        }
    }
    // A trailing version is not part of the basename.
    for k in kinds.iter_mut().rev() {
        if k.contains(&Kind::Basename) && k.len() > 1 {
            k.remove(&Kind::Basename);
        } else {
            break;
        }
    }
    let join = |want: Kind, exclude: Option<Kind>| -> Option<String> {
        let mut seen = Vec::new();
        for (p, k) in parts.iter().zip(&kinds) {
            if k.contains(&want) && !exclude.is_some_and(|e| k.contains(&e)) {
                if want == Kind::SizeLabel && seen.contains(p) {
                    continue;
                }
                seen.push(p.clone());
            }
        }
        (!seen.is_empty()).then(|| seen.join("-"))
    };
    info.size_label = join(Kind::SizeLabel, None);
    info.finetune = join(Kind::Finetune, None);
    info.version = join(Kind::Version, Some(Kind::Basename));
    info.basename = join(Kind::Basename, None);
    if info.size_label.is_none() && info.finetune.is_none() && info.version.is_none() {
        // Too ambiguous: no basename either.
        info.basename = None;
    }
    info
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(total: u64) -> ParamCount {
        ParamCount {
            total,
            ..ParamCount::default()
        }
    }

    #[test]
    fn fixture_and_hub_names() {
        // mixtral-mini's GGUF: name "Mixtral Mini Hf", basename mixtral, size mini, finetune hf.
        let g = general_info("mixtral-mini-hf", None, &c(23_000_000));
        assert_eq!(g.name, "Mixtral Mini Hf");
        assert_eq!(g.basename.as_deref(), Some("mixtral"));
        assert_eq!(g.size_label.as_deref(), Some("mini"));
        assert_eq!(g.finetune.as_deref(), Some("hf"));
        // Worked by hand from gguf-py's rules.
        let g = general_info("Mixtral-8x7B-Instruct-v0.1", None, &c(46_700_000_000));
        assert_eq!(g.basename.as_deref(), Some("Mixtral"));
        assert_eq!(g.size_label.as_deref(), Some("8x7B"));
        assert_eq!(g.finetune.as_deref(), Some("Instruct"));
        assert_eq!(g.version.as_deref(), Some("v0.1"));
        assert_eq!(g.name, "Mixtral 8x7B Instruct v0.1");
    }

    #[test]
    fn size_label_from_counts() {
        // stories-moe 8x: the llama.cpp file says 8x295K.
        let p = ParamCount {
            total: 0,
            shared: 0,
            expert: 0,
            expert_count: 8,
        };
        assert_eq!(
            size_label(&ParamCount {
                shared: 295_000 - 10,
                expert: 10,
                ..p
            }),
            "8x295K"
        );
        assert_eq!(rounded_notation(46_702_792_704), "47B");
        assert_eq!(rounded_notation(7_241_732_096), "7.2B");
        assert_eq!(rounded_notation(23_000_000), "23M");
        // Too ambiguous a name: only the size from the counts.
        let g = general_info("stories260K-moe8x-finetuned", Some("x"), &c(2_000_000));
        assert_eq!((g.basename, g.size_label.as_deref()), (None, Some("2.0M")));
    }
}
