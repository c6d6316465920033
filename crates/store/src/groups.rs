//! Assembling [`GroupFigures`] from the statements each backend runs (see their `figures.rs`).

use std::collections::BTreeMap;

use crate::{Counts, GroupFigures};

/// The figures of each (workspace, destination), filled from several statements.
#[derive(Default)]
pub(crate) struct Groups(BTreeMap<(String, String), GroupFigures>);

impl Groups {
    /// The figures of one workspace and destination, zeroed when first seen.
    pub(crate) fn entry(&mut self, workspace_id: String, destination: String) -> &mut GroupFigures {
        self.0.entry((workspace_id.clone(), destination.clone())).or_insert_with(|| GroupFigures {
            workspace_id,
            destination,
            ..GroupFigures::default()
        })
    }

    /// Adds the growing counters of deleted syncs (`more`'s gauges are ignored).
    pub(crate) fn add_retired(&mut self, workspace_id: String, destination: String, more: &Counts) {
        let into = &mut self.entry(workspace_id, destination).counts;
        into.entered += more.entered;
        into.proceeded += more.proceeded;
        into.not_synced += more.not_synced;
        into.synced += more.synced;
        into.errored += more.errored;
        into.deduplicated += more.deduplicated;
        into.retries += more.retries;
    }

    /// Every group, by workspace then destination.
    pub(crate) fn into_vec(self) -> Vec<GroupFigures> {
        self.0.into_values().collect()
    }
}
