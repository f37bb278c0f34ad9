//! The memory report as a table for people.

use super::Report;
use crate::control::{mib, process::Memory};
use std::fmt;

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let o = &self.objects;
        writeln!(
            f,
            "weft-controller --source files: {} namespaces, {} services, {} endpointslices, {} pods, {} trafficsplits",
            o.namespaces, o.services, o.endpointslices, o.pods, o.trafficsplits
        )?;
        writeln!(
            f,
            "  manifests     {} files, {:.1} MiB; loaded (process start to /index counting all) in {:.3} s",
            self.files,
            mib(self.manifest_bytes),
            self.load_s
        )?;
        writeln!(
            f,
            "  streams       {} OutboundPolicies.Watch + {} Destination.Get over {} connections, opened in {:.3} s; controller counts {} watches",
            self.outbound_streams,
            self.destination_streams,
            self.connections,
            self.open_s,
            self.watches
        )?;
        writeln!(f, "  {:<34} {:>10} {:>10}", "memory", "VmRSS", "VmHWM")?;
        for (label, m) in [
            ("loaded, no streams", self.idle),
            ("every stream open", self.with_streams),
            ("after the split changes", self.after_changes),
        ] {
            writeln!(f, "  {label:<34} {}", row(m))?;
        }
        let streams = (self.outbound_streams + self.destination_streams).max(1) as f64;
        let added = self.with_streams.rss_bytes as f64 - self.idle.rss_bytes as f64;
        writeln!(
            f,
            "  streams added {:.1} MiB VmRSS, {:.1} KiB per stream",
            added / (1024.0 * 1024.0),
            added / 1024.0 / streams
        )?;
        writeln!(
            f,
            "  split change, rename -> its watcher (ms)  {}",
            self.change_to_watcher_ms
        )?;
        writeln!(
            f,
            "  split change, rename -> /index (ms)       {}  (polled every {:.2} ms)",
            self.change_to_index_ms, self.index_poll_period_ms
        )?;
        write!(
            f,
            "  messages on the other {} streams during the changes: {}",
            (self.outbound_streams + self.destination_streams).saturating_sub(1),
            self.other_messages
        )
    }
}

fn row(m: Memory) -> String {
    format!(
        "{:>6.1} MiB {:>6.1} MiB",
        mib(m.rss_bytes),
        mib(m.hwm_bytes)
    )
}
