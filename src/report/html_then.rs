//! The `--then` section of the `--html` report: journeys, the next call's outcomes,
//! latency and phases; and the list of an outcome's reasons both sections show. Markup only (maud escapes the URL by construction).

use maud::{Markup, html};

use super::model::{PhaseTable, ThenReport, phase_rows};
use super::reasons::OutcomeReasons;
use crate::call::observation::StepOutcome;
use crate::util::fmt::human_secs;

/// `n` of `of` as people read it, `–` of nothing.
fn percent(n: u64, of: u64) -> String {
    if of == 0 { "–".to_string() } else { format!("{:.2} %", super::model::share(n, of) * 100.0) }
}

/// The section for the report's `then`; `due` counts every due journey.
pub fn section(t: &ThenReport, due: u64) -> Markup {
    html! {
        h2 { "Journeys: " (t.method) " " (t.url) }
        p {
            (t.journeys_ok) " of " (due) " journeys ok (" (percent(t.journeys_ok, due)) "): the login ok and the next \
            call, made with its token, accepted. Journey error rate " (format!("{:.2} %", t.journey_error_rate * 100.0)) "."
        }
        table {
            tr {
                th { "Next call" } th.n { "Calls" } th.n { "Share" }
                @if !t.reasons.is_empty() { th { "Most frequent reasons" } }
            }
            @for o in StepOutcome::ALL {
                @let n = t.outcomes.get(o.as_str()).copied().unwrap_or(0);
                @if n > 0 || o == StepOutcome::Accepted {
                    tr {
                        td { (o.as_str()) } td.n { (n) } td.n { (percent(n, t.calls)) }
                        @if !t.reasons.is_empty() { td { (reason_list(t.reasons.get(o.as_str()))) } }
                    }
                }
            }
        }
        @if t.calls > 0 {
            table {
                tr { th { "Next call latency (from its send)" } @for (name, _) in t.latency_seconds.rows() { th.n { (name) } } }
                tr { td {} @for (_, v) in t.latency_seconds.rows() { td.n { (human_secs(v)) } } }
            }
            (phases(&t.phases_seconds))
        }
    }
}

fn phases(table: &PhaseTable) -> Markup {
    html! {
        table {
            tr { th { "Next call phase" } th.n { "Calls" } th.n { "p50" } th.n { "p99" } th.n { "max" } }
            @for (name, stats) in phase_rows(table) {
                @if let Some(p) = stats {
                    tr { td { (name) } td.n { (p.calls) } @for v in [p.p50, p.p99, p.max] { td.n { (human_secs(v)) } } }
                }
            }
        }
    }
}

/// An outcome's most frequent reasons, one a line with its count.
pub fn reason_list(reasons: Option<&OutcomeReasons>) -> Markup {
    html! {
        @if let Some(r) = reasons {
            @for c in &r.top { div.reason { span.count { (c.count) } " " (c.reason) } }
            @if r.other > 0 { div.reason { span.count { (r.other) } " other reasons" } }
        }
    }
}
