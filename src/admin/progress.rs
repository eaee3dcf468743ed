//! Feedback on long work (`backup`, `check`): a spinner with the current stage on stderr,
//! only when stderr is a terminal and `--json` was not given. Piped or scripted runs get
//! not one extra byte, and stdout is never touched.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use super::Context;

/// A spinner that is cleared when dropped; a no-op where no one watches.
pub struct Progress(Option<ProgressBar>);

impl Progress {
    /// Starts showing `stage`, if a person is watching stderr.
    pub fn start(context: &Context, stage: &str) -> Progress {
        if context.json || !std::io::stderr().is_terminal() {
            return Progress(None);
        }
        let bar = ProgressBar::new_spinner();
        if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} ({elapsed})") {
            bar.set_style(style);
        }
        bar.set_message(stage.to_owned());
        bar.enable_steady_tick(Duration::from_millis(100));
        Progress(Some(bar))
    }

    /// Moves on to the next stage.
    pub fn stage(&self, stage: &str) {
        if let Some(bar) = &self.0 {
            bar.set_message(stage.to_owned());
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(bar) = &self.0 {
            bar.finish_and_clear();
        }
    }
}
