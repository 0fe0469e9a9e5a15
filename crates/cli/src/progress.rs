//! Progress bars for registry transfers: on a terminal only, so logs and
//! pipes stay quiet.

use indicatif::{ProgressBar, ProgressStyle};
use pwchain_compose::oci::registry::Progress;
use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::{Arc, Mutex};

/// A reporter drawing one bar per transfer, or `None` off a terminal.
pub fn bars() -> Option<Progress> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let style =
        ProgressStyle::with_template("{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
    let bars: Mutex<HashMap<String, ProgressBar>> = Mutex::new(HashMap::new());
    Some(Arc::new(move |what: &str, done: u64, total: u64| {
        let Ok(mut bars) = bars.lock() else { return };
        let bar = bars.entry(what.to_string()).or_insert_with(|| {
            let bar = ProgressBar::new(total).with_style(style.clone());
            bar.set_message(what.to_string());
            bar
        });
        bar.set_position(done);
        if done >= total {
            bar.finish();
        }
    }))
}
