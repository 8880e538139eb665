//! Wakes the loop when anything changes in the desired-state file's folder.

use std::path::Path;

use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::mpsc::UnboundedSender;

use crate::runloop::Trigger;

/// Watches the file's folder, not the file: editors and GitOps tools replace files by
/// rename, and Kubernetes-style mounts swap a symlinked folder. Every change wakes the
/// loop, which re-reads the file and acts only if its bytes changed.
///
/// # Errors
/// The platform's watcher could not be set up; the loop still polls on its interval.
pub fn watch(path: &Path, tx: UnboundedSender<Trigger>) -> notify::Result<RecommendedWatcher> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        // Our own reads of the file show up as access events: ignore them.
        if let Ok(event) = event {
            if !matches!(event.kind, EventKind::Access(_)) {
                let _ = tx.send(Trigger::File);
            }
        }
    })?;
    watcher.watch(dir, RecursiveMode::NonRecursive)?;
    Ok(watcher)
}
