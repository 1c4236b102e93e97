//! Progress bars for the commands that take a while (the conformance suite, benchmark runs,
//! reports): drawn on standard error only when it is a terminal, and never with `--json` or
//! `-q`, so piped and machine-read output stays clean.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A bar over `len` steps, or nothing at all when `shown` is false or stderr is no terminal.
pub fn bar(len: u64, message: &str, shown: bool) -> ProgressBar {
    if !shown {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template("{msg:>12} [{bar:40}] {pos}/{len} {elapsed_precise} (eta {eta})") {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(message.to_string());
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bar_that_is_not_shown_is_hidden_but_still_counts() {
        let b = bar(10, "cases", false);
        assert!(b.is_hidden());
        b.inc(3);
        assert_eq!(b.position(), 3);
    }
}
