//! `reloader explain` output: for people (coloured only on a terminal) and JSON.

use std::fmt::Write as _;

use super::{Explanation, Verdict};

fn paint(color: bool, code: &str, text: &str) -> String {
    if color {
        format!("\x1b[{code}m{text}\x1b[0m")
    } else {
        text.to_string()
    }
}

fn verdict_color(verdict: &Verdict) -> &'static str {
    match verdict {
        Verdict::UpToDate => "32",
        Verdict::WouldRoll { .. }
        | Verdict::WouldRestart { .. }
        | Verdict::WouldNotify { .. }
        | Verdict::Acknowledge { .. }
        | Verdict::WouldResume
        | Verdict::Paused { .. } => "33",
        Verdict::Held { reason, .. } if *reason == "halted" => "31",
        Verdict::Held { .. } => "33",
        Verdict::CannotVerify { .. } | Verdict::Unreadable { .. } => "31",
        Verdict::Excluded { .. } | Verdict::Deleting => "2",
    }
}

fn options_line(e: &Explanation) -> String {
    let flags = if e.options.flags.is_empty() {
        "no flags (the defaults)".to_string()
    } else {
        e.options.flags.join(" ")
    };
    format!("{}: {flags}", e.options.from)
}

fn stamps_line(e: &Explanation) -> String {
    format!("{} strategy, {}: {}", e.stamps.strategy, e.stamps.keys, e.stamps.detail)
}

/// One workload, in full.
pub fn human(e: &Explanation, color: bool) -> String {
    let mut out = String::new();
    let title = format!("{} {}/{}", e.kind, e.namespace, e.name);
    let _ = writeln!(
        out,
        "{}: {}",
        paint(color, "1", &title),
        paint(color, verdict_color(&e.verdict), &e.summary)
    );
    let _ = writeln!(out, "  options: {}", options_line(e));
    let _ = writeln!(out, "  stamps:  {}", stamps_line(e));
    if !e.sources.is_empty() {
        let _ = writeln!(
            out,
            "\n  reloads on{}",
            if e.scans {
                " (and any new source a pattern or match selects)"
            } else {
                ""
            }
        );
        for s in &e.sources {
            let mut via = s.why.clone();
            if let Some(c) = &s.container {
                let _ = write!(via, "; container {c}");
            }
            if s.referenced {
                via.push_str(", referenced by the pod template");
            }
            let _ = writeln!(out, "    {}  {via}", paint(color, "1", &s.source));
            let _ = writeln!(out, "      current   {}", s.current);
            let _ = writeln!(out, "      recorded  {}", s.recorded.as_deref().unwrap_or("(nothing)"));
            if let Some(keys) = &s.keys {
                let absent = if keys.absent.is_empty() {
                    String::new()
                } else {
                    format!(" (not in the source: {})", keys.absent.join(", "))
                };
                let _ = writeln!(out, "      keys      {}{absent}", keys.read.join(", "));
            }
            let _ = writeln!(out, "      {}: {}", s.state.replace('-', " "), s.detail);
        }
    } else if matches!(e.verdict, Verdict::UpToDate) {
        let _ = writeln!(out, "\n  reloads on no source");
    }
    if !e.not_reloaded_on.is_empty() {
        let _ = writeln!(out, "\n  not reloaded on");
        for s in &e.not_reloaded_on {
            let referenced = if s.referenced { "referenced; " } else { "" };
            let _ = writeln!(out, "    {}  {referenced}{}", s.source, s.why);
        }
    }
    let _ = writeln!(out, "\n  last reloads");
    if e.last_reloads.is_empty() {
        let _ = writeln!(out, "    (no Reloaded or ReloadFail events)");
    }
    for ev in &e.last_reloads {
        let count = ev.count.map(|c| format!(" (x{c})")).unwrap_or_default();
        let _ = writeln!(out, "    {}  {}{count}  {}", ev.time, ev.reason, ev.message);
    }
    if !e.notes.is_empty() {
        let _ = writeln!(out, "\n  notes");
        for note in &e.notes {
            let _ = writeln!(out, "    {note}");
        }
    }
    out
}

/// Every workload of a namespace, one line each.
pub fn human_all(namespace: &str, all: &[Explanation], color: bool) -> String {
    let mut out = String::new();
    let Some(first) = all.first() else {
        let _ = writeln!(out, "no workloads in {namespace}");
        return out;
    };
    let _ = writeln!(out, "options: {}", options_line(first));
    let _ = writeln!(out, "stamps:  {}", stamps_line(first));
    let width = all
        .iter()
        .map(|e| e.kind.as_str().len() + e.name.len() + 1)
        .max()
        .unwrap_or(0);
    for e in all {
        let title = format!("{}/{}", e.kind, e.name);
        let _ = writeln!(
            out,
            "{}  {}",
            paint(color, "1", &format!("{title:width$}")),
            paint(color, verdict_color(&e.verdict), &e.summary)
        );
    }
    out
}

pub fn json(e: &Explanation) -> String {
    format!("{}\n", serde_json::to_string_pretty(e).unwrap_or_default())
}

pub fn json_all(all: &[Explanation]) -> String {
    format!("{}\n", serde_json::to_string_pretty(all).unwrap_or_default())
}
