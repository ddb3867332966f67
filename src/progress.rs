//! A progress bar that stays out of sight for work that ends quickly: it draws (on stderr, when
//! that is a terminal) only once the work has run for [`DELAY`], so short prompts print nothing
//! while a 30k-token prefill shows a label, a count and an ETA.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::time::{Duration, Instant};

/// How long work runs before its bar appears.
pub const DELAY: Duration = Duration::from_secs(1);

pub struct DelayedBar {
    bar: ProgressBar,
    start: Instant,
    shown: bool,
    quiet: bool,
}

impl DelayedBar {
    /// A bar over `total` units; `quiet` keeps it hidden throughout (JSON output, say).
    pub fn new(label: &str, total: u64, quiet: bool) -> Self {
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::hidden());
        let template = format!("{label} {{bar:30}} {{pos}}/{{len}} ETA {{eta}} {{msg}}");
        bar.set_style(
            ProgressStyle::with_template(&template)
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        DelayedBar {
            bar,
            start: Instant::now(),
            shown: false,
            quiet,
        }
    }

    /// `n` more units done; `msg` (a running value, say) is shown after the ETA.
    pub fn inc(&mut self, n: u64, msg: Option<String>) {
        if let Some(msg) = msg {
            self.bar.set_message(msg);
        }
        self.set_position(self.bar.position() + n);
    }

    /// `pos` units done in all.
    pub fn set_position(&mut self, pos: u64) {
        self.bar.set_position(pos);
        if !self.shown && !self.quiet && self.start.elapsed() >= DELAY {
            self.shown = true;
            self.bar.set_draw_target(ProgressDrawTarget::stderr());
        }
    }
}

impl Drop for DelayedBar {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
    }
}
