//! The annotation vocabulary: every key Stakater Reloader understands or writes, where it may
//! appear, what its value means, and which CLI flag renames it. This module is the only place that
//! spells a key; the decision core, the admission validator and any offline linter all ask it.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::sync::{LazyLock, Mutex};
use std::time::Duration;

use regex::{Regex, RegexBuilder};
use thiserror::Error;

use super::names::{MAX_QUALIFIED_NAME_LEN, is_dns_subdomain};
use super::source::SourceKind;
use super::waves::{WaveError, WaveSizes};
use super::window::{ReloadWindow, WindowError};

/// The annotation domain of Stakater Reloader; every default key lives under it or a subdomain.
pub const DOMAIN: &str = "reloader.stakater.com";

/// Keys that no Stakater flag renames.
pub mod fixed {
    pub const SPC_AUTO: &str = "secretproviderclass.reloader.stakater.com/auto";
    pub const SPC_RELOAD: &str = "secretproviderclass.reloader.stakater.com/reload";
    pub const CONFIGMAPS_EXCLUDE: &str = "configmaps.exclude.reloader.stakater.com/reload";
    pub const SECRETS_EXCLUDE: &str = "secrets.exclude.reloader.stakater.com/reload";
    pub const SPC_EXCLUDE: &str = "secretproviderclasses.exclude.reloader.stakater.com/reload";
    pub const ROLLOUT_STRATEGY: &str = "reloader.stakater.com/rollout-strategy";
    /// Written by Stakater's annotations strategy; read only to recognise it.
    pub const LAST_RELOADED_FROM: &str = "reloader.stakater.com/last-reloaded-from";
    /// Ours: pod-template annotation with the hashes the running pods were rolled with.
    pub const TEMPLATE_HASHES: &str = "reloader.stakater.com/hashes";
    /// Ours: workload-metadata annotation with hashes acknowledged without a rollout.
    pub const ACKNOWLEDGED_HASHES: &str = "reloader.stakater.com/acknowledged-hashes";
    /// Ours: when a workload may roll ([`crate::core::window`]); on the workload's metadata or
    /// its Namespace.
    pub const RELOAD_WINDOW: &str = "reloader.stakater.com/reload-window";
    /// Ours: `"true"` on workload metadata lets a change held by a window or a wave through now;
    /// the reloader removes it when it rolls the workload.
    pub const RELOAD_NOW: &str = "reloader.stakater.com/reload-now";
    /// Ours: on a source, the cumulative sizes of the waves its dependents roll in
    /// ([`crate::core::waves`]).
    pub const ROLLOUT_WAVES: &str = "reloader.stakater.com/rollout-waves";
    /// Ours: `"true"` on workload metadata puts the workload in the first wave (canaries).
    pub const FIRST_WAVE: &str = "reloader.stakater.com/first-wave";
    /// Ours: `"true"` on workload metadata stamps it with hashes of only the keys it reads of
    /// each source ([`crate::core::per_key`]); `"false"` with whole contents, whatever
    /// `--per-key-reloads` says.
    pub const PER_KEY: &str = "reloader.stakater.com/per-key";
    /// Ours: written on the metadata of a workload with `rollout-strategy: restart` (not an
    /// Argo Rollout): when its pods were last restarted for a change (RFC 3339); its pods
    /// created before are restarted ([`crate::core::pod_restart`]).
    pub const RESTARTED_AT: &str = "reloader.stakater.com/restarted-at";
}

/// Default values of the renameable keys (Stakater's `internal/pkg/options/flags.go`).
pub mod defaults {
    pub const AUTO: &str = "reloader.stakater.com/auto";
    pub const CONFIGMAP_AUTO: &str = "configmap.reloader.stakater.com/auto";
    pub const SECRET_AUTO: &str = "secret.reloader.stakater.com/auto";
    pub const CONFIGMAP_RELOAD: &str = "configmap.reloader.stakater.com/reload";
    pub const SECRET_RELOAD: &str = "secret.reloader.stakater.com/reload";
    pub const SEARCH: &str = "reloader.stakater.com/search";
    pub const MATCH: &str = "reloader.stakater.com/match";
    pub const IGNORE: &str = "reloader.stakater.com/ignore";
    pub const PAUSE_PERIOD: &str = "deployment.reloader.stakater.com/pause-period";
    pub const PAUSED_AT: &str = "deployment.reloader.stakater.com/paused-at";
}

/// Where a key may legitimately appear.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Placement {
    /// Workload metadata, or the pod template when the workload metadata has none of the
    /// decision keys for that source kind (Stakater's all-or-nothing fallback).
    WorkloadOrTemplate,
    /// Workload metadata only (exclude lists).
    WorkloadMetadata,
    /// Workload metadata, or the annotations of the workload's Namespace (reload windows). The
    /// webhook validates no Namespaces; on workloads the rules are those of `WorkloadMetadata`.
    WorkloadMetadataOrNamespace,
    /// A ConfigMap, Secret or SecretProviderClass.
    Source,
    /// Deployment metadata only.
    DeploymentMetadata,
    /// The metadata of an Argo Rollout, a Deployment, a StatefulSet or a DaemonSet (the kinds
    /// whose pods `rollout-strategy: restart` restarts, [`crate::core::pod_restart`]).
    RestartableMetadata,
    /// Written by a reloader; a person should not set it.
    Written,
}

/// The syntax of a key's value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValueSyntax {
    /// Go `strconv.ParseBool`: 1, t, T, TRUE, true, True, 0, f, F, FALSE, false, False.
    Bool,
    /// Only the exact string `"true"` switches it on; anything else means off.
    ExactTrue,
    /// Comma list; each trimmed item is a regular expression matched against the whole name.
    NameRegexList,
    /// Comma list of exact names.
    NameList,
    /// Go `time.ParseDuration` (e.g. `5m`, `1h30m`).
    Duration,
    /// `restart`, or anything else for the default rollout behaviour.
    RolloutStrategy,
    /// `"true"` switches it on, `"false"` (or no annotation) leaves it off; anything else is an
    /// error. Our own switches: no Stakater habit to stay compatible with, so a `True` or `yes`
    /// that would silently mean "off" is refused instead.
    TrueOrFalse,
    /// A reload window ([`crate::core::window::ReloadWindow`]).
    ReloadWindow,
    /// Cumulative wave sizes ([`crate::core::waves::WaveSizes`]).
    WaveSizes,
    /// Opaque content written by a reloader.
    Opaque,
}

/// Everything the vocabulary knows about one key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeySpec {
    pub key: String,
    pub role: Role,
    pub placement: Placement,
    pub syntax: ValueSyntax,
    /// The Stakater CLI flag that renames this key, if any.
    pub flag: Option<&'static str>,
}

/// What a key means to the decision core.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    Auto,
    TypedAuto(SourceKind),
    Reload(SourceKind),
    Exclude(SourceKind),
    Search,
    Match,
    Ignore,
    PausePeriod,
    PausedAt,
    RolloutStrategy,
    LastReloadedFrom,
    TemplateHashes,
    AcknowledgedHashes,
    ReloadWindow,
    ReloadNow,
    RolloutWaves,
    FirstWave,
    PerKey,
    RestartedAt,
}

/// The renameable keys, as configured by Stakater's flags (defaults when not renamed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AnnotationKeys {
    pub auto: String,
    pub configmap_auto: String,
    pub secret_auto: String,
    pub configmap_reload: String,
    pub secret_reload: String,
    pub search: String,
    pub match_: String,
    pub ignore: String,
    pub pause_period: String,
    pub paused_at: String,
}

impl Default for AnnotationKeys {
    fn default() -> Self {
        Self {
            auto: defaults::AUTO.into(),
            configmap_auto: defaults::CONFIGMAP_AUTO.into(),
            secret_auto: defaults::SECRET_AUTO.into(),
            configmap_reload: defaults::CONFIGMAP_RELOAD.into(),
            secret_reload: defaults::SECRET_RELOAD.into(),
            search: defaults::SEARCH.into(),
            match_: defaults::MATCH.into(),
            ignore: defaults::IGNORE.into(),
            pause_period: defaults::PAUSE_PERIOD.into(),
            paused_at: defaults::PAUSED_AT.into(),
        }
    }
}

impl AnnotationKeys {
    pub fn typed_auto(&self, kind: SourceKind) -> &str {
        match kind {
            SourceKind::ConfigMap => &self.configmap_auto,
            SourceKind::Secret => &self.secret_auto,
            SourceKind::SecretProviderClass => fixed::SPC_AUTO,
        }
    }

    pub fn reload(&self, kind: SourceKind) -> &str {
        match kind {
            SourceKind::ConfigMap => &self.configmap_reload,
            SourceKind::Secret => &self.secret_reload,
            SourceKind::SecretProviderClass => fixed::SPC_RELOAD,
        }
    }

    pub fn exclude(&self, kind: SourceKind) -> &'static str {
        match kind {
            SourceKind::ConfigMap => fixed::CONFIGMAPS_EXCLUDE,
            SourceKind::Secret => fixed::SECRETS_EXCLUDE,
            SourceKind::SecretProviderClass => fixed::SPC_EXCLUDE,
        }
    }

    /// Every key in the vocabulary, with its role, placement, syntax and renaming flag.
    pub fn specs(&self) -> Vec<KeySpec> {
        use Placement::*;
        use ValueSyntax::*;
        let spec = |key: &str, role, placement, syntax, flag| KeySpec {
            key: key.to_string(),
            role,
            placement,
            syntax,
            flag,
        };
        let mut specs = vec![
            spec(
                &self.auto,
                Role::Auto,
                WorkloadOrTemplate,
                Bool,
                Some("--auto-annotation"),
            ),
            spec(
                &self.search,
                Role::Search,
                WorkloadOrTemplate,
                ExactTrue,
                Some("--auto-search-annotation"),
            ),
            spec(
                &self.match_,
                Role::Match,
                Source,
                ExactTrue,
                Some("--search-match-annotation"),
            ),
            spec(
                &self.ignore,
                Role::Ignore,
                Source,
                ExactTrue,
                Some("--ignore-annotation"),
            ),
            spec(
                &self.pause_period,
                Role::PausePeriod,
                DeploymentMetadata,
                Duration,
                Some("--pause-deployment-annotation"),
            ),
            spec(
                &self.paused_at,
                Role::PausedAt,
                Written,
                Opaque,
                Some("--pause-deployment-time-annotation"),
            ),
            spec(
                fixed::ROLLOUT_STRATEGY,
                Role::RolloutStrategy,
                RestartableMetadata,
                RolloutStrategy,
                None,
            ),
            spec(fixed::LAST_RELOADED_FROM, Role::LastReloadedFrom, Written, Opaque, None),
            spec(fixed::TEMPLATE_HASHES, Role::TemplateHashes, Written, Opaque, None),
            spec(
                fixed::ACKNOWLEDGED_HASHES,
                Role::AcknowledgedHashes,
                Written,
                Opaque,
                None,
            ),
            spec(
                fixed::RELOAD_WINDOW,
                Role::ReloadWindow,
                WorkloadMetadataOrNamespace,
                ValueSyntax::ReloadWindow,
                None,
            ),
            spec(fixed::RELOAD_NOW, Role::ReloadNow, WorkloadMetadata, TrueOrFalse, None),
            spec(
                fixed::ROLLOUT_WAVES,
                Role::RolloutWaves,
                Source,
                ValueSyntax::WaveSizes,
                None,
            ),
            spec(fixed::FIRST_WAVE, Role::FirstWave, WorkloadMetadata, TrueOrFalse, None),
            spec(fixed::PER_KEY, Role::PerKey, WorkloadMetadata, TrueOrFalse, None),
            spec(fixed::RESTARTED_AT, Role::RestartedAt, Written, Opaque, None),
        ];
        for kind in SourceKind::ALL {
            let (auto_flag, reload_flag) = match kind {
                SourceKind::ConfigMap => (Some("--configmap-auto-annotation"), Some("--configmap-annotation")),
                SourceKind::Secret => (Some("--secret-auto-annotation"), Some("--secret-annotation")),
                SourceKind::SecretProviderClass => (None, None),
            };
            specs.push(spec(
                self.typed_auto(kind),
                Role::TypedAuto(kind),
                WorkloadOrTemplate,
                Bool,
                auto_flag,
            ));
            specs.push(spec(
                self.reload(kind),
                Role::Reload(kind),
                WorkloadOrTemplate,
                NameRegexList,
                reload_flag,
            ));
            specs.push(spec(
                self.exclude(kind),
                Role::Exclude(kind),
                WorkloadMetadata,
                NameList,
                None,
            ));
        }
        specs
    }

    /// The spec of a key, if it is in the vocabulary.
    pub fn spec(&self, key: &str) -> Option<KeySpec> {
        self.specs().into_iter().find(|s| s.key == key)
    }

    /// Classifies an annotation key: known, a likely typo of a known key, or none of ours. To
    /// classify many keys, make one [`Classifier`].
    pub fn classify(&self, key: &str) -> KeyClass {
        self.classifier().classify(key)
    }

    /// The vocabulary prepared for classifying many keys.
    pub fn classifier(&self) -> Classifier {
        let specs = self.specs();
        let domains = self.domains();
        Classifier {
            spec_chars: specs.iter().map(|s| s.key.chars().collect()).collect(),
            domain_chars: domains.iter().map(|d| d.chars().collect()).collect(),
            specs,
            domains,
        }
    }

    /// The annotation domains our keys live in (the default one plus those of renamed keys).
    fn domains(&self) -> BTreeSet<String> {
        let mut domains: BTreeSet<String> = self
            .specs()
            .iter()
            .map(|s| key_prefix(&s.key).to_string())
            .filter(|p| !p.is_empty())
            .collect();
        domains.insert(DOMAIN.to_string());
        // Subdomains of ours collapse into it: `configmap.reloader.stakater.com` is covered.
        domains.retain(|d| d == DOMAIN || !d.ends_with(&format!(".{DOMAIN}")));
        domains
    }
}

/// Every key spec and domain, computed once for classifying many keys.
#[derive(Clone, Debug)]
pub struct Classifier {
    specs: Vec<KeySpec>,
    /// The characters of each spec's key, for edit distances.
    spec_chars: Vec<Vec<char>>,
    domains: BTreeSet<String>,
    domain_chars: Vec<Vec<char>>,
}

impl Classifier {
    /// Classifies an annotation key: known, a likely typo of a known key, or none of ours.
    pub fn classify(&self, key: &str) -> KeyClass {
        let specs = &self.specs;
        if let Some(spec) = specs.iter().find(|s| s.key == key) {
            return KeyClass::Known(spec.clone());
        }
        // Longer than any valid annotation key: not ours, and not worth an edit distance
        // (admission input is untrusted).
        if key.len() > MAX_QUALIFIED_NAME_LEN {
            return KeyClass::Foreign;
        }
        // Bounded distances: past the bound, only "too far" matters.
        let chars: Vec<char> = key.chars().collect();
        // `reload-now` rolls at once: offered only for a one-edit slip (`reloadnow`), never for
        // `reloader.stakater.com/reload`, four edits away and more likely a reload list.
        let nearest = specs
            .iter()
            .zip(&self.spec_chars)
            .map(|(s, c)| (bounded_osa(&chars, c, SUGGESTION_DISTANCE), &s.key))
            .filter(|(d, k)| *k != fixed::RELOAD_NOW || *d <= 1)
            .min()
            .map(|(d, k)| (d, k.clone()));
        let prefix = key_prefix(key);
        let domains = &self.domains;
        let in_domain = domains
            .iter()
            .any(|d| prefix == d || prefix.ends_with(&format!(".{d}")));
        if in_domain {
            let suggestion = nearest.filter(|(d, _)| *d <= SUGGESTION_DISTANCE).map(|(_, k)| k);
            return KeyClass::UnknownInDomain { suggestion };
        }
        // A near miss: the whole key, or its domain, is a small edit away from ours.
        let near_key = nearest.filter(|(d, _)| *d <= NEAR_MISS_DISTANCE).map(|(_, k)| k);
        let prefix_chars: Vec<char> = prefix.chars().collect();
        let near_domain = self.domain_chars.iter().any(|d| {
            // Every dot-suffix of the prefix, so `configmap.reloader.stakatar.com` counts too.
            let starts = std::iter::once(0).chain(
                prefix_chars
                    .iter()
                    .enumerate()
                    .filter(|(_, c)| **c == '.')
                    .map(|(i, _)| i + 1),
            );
            starts
                .map(|start| &prefix_chars[start..])
                .any(|suffix| bounded_osa(suffix, d, NEAR_MISS_DISTANCE) <= NEAR_MISS_DISTANCE)
        });
        match near_key {
            Some(k) => KeyClass::NearMiss { suggestion: Some(k) },
            None if near_domain => KeyClass::NearMiss { suggestion: None },
            None => KeyClass::Foreign,
        }
    }
}

const SUGGESTION_DISTANCE: usize = 4;
const NEAR_MISS_DISTANCE: usize = 2;

fn key_prefix(key: &str) -> &str {
    key.rsplit_once('/').map(|(p, _)| p).unwrap_or("")
}

/// How a key relates to the vocabulary.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyClass {
    Known(KeySpec),
    /// Under a reloader domain but not a key we know (`reloader.stakater.com/atuo`).
    UnknownInDomain {
        suggestion: Option<String>,
    },
    /// Outside our domains but a small edit away from one of our keys or domains
    /// (`reloader.stakatar.com/auto`).
    NearMiss {
        suggestion: Option<String>,
    },
    /// Not ours.
    Foreign,
}

/// Optimal-string-alignment distance: Levenshtein plus adjacent transpositions, so that
/// `atuo` is one edit from `auto`.
pub fn osa_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    // The distance is at least the length difference; callers only care about small ones.
    if a.len().abs_diff(b.len()) > SUGGESTION_DISTANCE {
        return a.len().abs_diff(b.len());
    }
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    d[0] = (0..=b.len()).collect();
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1).min(d[i][j - 1] + 1).min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

/// [`osa_distance`] when it is at most `max`, else `max + 1`. Only the diagonal band
/// `|i - j| <= max` is computed, over two reused rows, and it stops as soon as a whole row is
/// past `max`: linting thousands of keys costs little.
fn bounded_osa(a: &[char], b: &[char], max: usize) -> usize {
    let far = max + 1;
    if a.len().abs_diff(b.len()) > max {
        return far;
    }
    let width = b.len() + 1;
    // Rows i-2, i-1 and i; cells outside the band read as `far`.
    let mut rows = vec![far; 3 * width];
    for (j, cell) in rows[width..2 * width].iter_mut().enumerate().take(far) {
        *cell = j;
    }
    for i in 1..=a.len() {
        let (done, current) = rows.split_at_mut(2 * width);
        let (before, previous) = done.split_at(width);
        let current = &mut current[..width];
        current.fill(far);
        if i <= max {
            current[0] = i;
        }
        let (lo, hi) = (i.saturating_sub(max).max(1), (i + max).min(b.len()));
        let mut row_min = current[0];
        for j in lo..=hi {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (previous[j] + 1).min(current[j - 1] + 1).min(previous[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(before[j - 2] + 1);
            }
            current[j] = best.min(far);
            row_min = row_min.min(current[j]);
        }
        if row_min > max {
            return far;
        }
        // Row i becomes i-1, row i-1 becomes i-2.
        rows.copy_within(width..3 * width, 0);
    }
    rows[width + b.len()].min(far)
}

/// A value that does not parse under its key's syntax. Messages quote at most [`MAX_QUOTED`]
/// characters of the value, so a huge annotation never comes back whole in a denial or a log.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ValueError {
    #[error("{key}: {value:?} is not a boolean (use \"true\" or \"false\")")]
    BadBool { key: String, value: String },
    #[error("{key}: item {item:?} is not a valid regular expression: {reason}")]
    BadRegex { key: String, item: String, reason: String },
    #[error("{key}: {value:?} is not a duration (examples: 30s, 5m, 1h30m)")]
    BadDuration { key: String, value: String },
    #[error("{key}: {value:?} is not a strategy (use \"restart\" or \"rollout\")")]
    BadStrategy { key: String, value: String },
    #[error("{key}: the list has {count} items; at most {max} are allowed")]
    TooManyItems { key: String, count: usize, max: usize },
    #[error("{key}: item {item:?} is {len} bytes long; at most {max} are allowed")]
    ItemTooLong {
        key: String,
        item: String,
        len: usize,
        max: usize,
    },
    #[error("{key}: {value:?} is not a switch (use \"true\", or \"false\" or no annotation for off)")]
    BadSwitch { key: String, value: String },
    #[error("{key}: {error}")]
    BadWindow {
        key: String,
        #[source]
        error: WindowError,
    },
    #[error("{key}: {error}")]
    BadWaves {
        key: String,
        #[source]
        error: WaveError,
    },
}

/// Reload lists with more items than this are invalid as a whole: the decision skips the list
/// (reported in `Dependencies::errors`), the validating webhook denies it. Real lists name a
/// handful of sources; the bound keeps the compile work of one annotation small.
pub const MAX_LIST_ITEMS: usize = 100;
/// Reload-list items longer than this are invalid (object names are at most 253 characters;
/// a pattern may be somewhat longer than the names it matches).
pub const MAX_ITEM_LEN: usize = 512;
/// The compiled size limit of one item's regular expression (the `regex` default is 10 MiB):
/// `\\w{10}` (Unicode word characters) needs about 500 KiB and is refused; `\\w+` needs 50 KiB.
pub const REGEX_SIZE_LIMIT: usize = 256 * 1024;
/// Items compiling within this size are "small" in the pattern cache; most are a few KiB.
const SMALL_REGEX: usize = 16 * 1024;
/// The lazy DFA cache of one compiled item; names are short, so few states are ever built.
const REGEX_DFA_SIZE_LIMIT: usize = 256 * 1024;

pub use super::text::{MAX_QUOTED, quoted, truncate_chars};

/// Go's `strconv.ParseBool`.
pub fn parse_go_bool(value: &str) -> Option<bool> {
    match value {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// Parses a Go bool for `key`, with a typed error.
pub fn parse_bool(key: &str, value: &str) -> Result<bool, ValueError> {
    parse_go_bool(value).ok_or_else(|| ValueError::BadBool {
        key: key.into(),
        value: quoted(value),
    })
}

/// Stakater's "exact true" switches (`search`, `match`, `ignore`).
pub fn is_exact_true(value: Option<&str>) -> bool {
    value == Some("true")
}

/// Our own switches ([`ValueSyntax::TrueOrFalse`]: `reload-now`, `first-wave`, `per-key`): `"true"` is on,
/// `"false"` off, anything else an error (which the engine reads as off).
pub fn parse_switch(key: &str, value: &str) -> Result<bool, ValueError> {
    match value {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(ValueError::BadSwitch {
            key: key.into(),
            value: quoted(value),
        }),
    }
}

/// A `reload-window` value, with the key in its error.
pub fn parse_reload_window(key: &str, value: &str) -> Result<ReloadWindow, ValueError> {
    value
        .parse()
        .map_err(|error| ValueError::BadWindow { key: key.into(), error })
}

/// A `rollout-waves` value, with the key in its error.
pub fn parse_wave_sizes(key: &str, value: &str) -> Result<WaveSizes, ValueError> {
    value
        .parse()
        .map_err(|error| ValueError::BadWaves { key: key.into(), error })
}

/// One item of a reload list: a whole-name regular expression.
#[derive(Clone, Debug)]
pub struct NamePattern {
    pub item: String,
    matcher: Matcher,
}

/// Plain names (most items) are compared, not compiled.
#[derive(Clone, Debug)]
enum Matcher {
    Plain,
    Regex(Regex),
}

impl NamePattern {
    pub fn matches(&self, name: &str) -> bool {
        !name.is_empty()
            && match &self.matcher {
                Matcher::Plain => name == self.item,
                Matcher::Regex(regex) => regex.is_match(name),
            }
    }

    /// True when the item matches only itself (no regex syntax), so a lookup by name suffices.
    pub fn is_exact(&self) -> bool {
        regex::escape(&self.item) == self.item
    }

    /// True when the item is itself a valid object name, so it names one source definitely
    /// (even before that source exists), besides matching as a pattern.
    pub fn is_literal_name(&self) -> bool {
        is_dns_subdomain(&self.item)
    }
}

impl PartialEq for NamePattern {
    fn eq(&self, other: &Self) -> bool {
        self.item == other.item
    }
}

/// A parsed reload list: the valid patterns plus the errors of the items that did not compile.
/// Callers decide whether an error is fatal (the validating webhook denies) or skipped (the
/// engine logs and keeps the valid items, as Stakater does).
#[derive(Clone, Debug, Default)]
pub struct NameRegexList {
    pub patterns: Vec<NamePattern>,
    pub errors: Vec<ValueError>,
}

impl NameRegexList {
    pub fn matches(&self, name: &str) -> Option<&NamePattern> {
        self.patterns.iter().find(|p| p.matches(name))
    }
}

/// Splits on `,`, trims, skips empty items (Stakater compiles an empty item to `^$`), and
/// compiles each as a whole-name match. Unlike Stakater's `^item$`, the item is grouped, so
/// `a|b` means "a or b" rather than "starts with a or ends with b".
///
/// Bounded: a list of more than [`MAX_LIST_ITEMS`] items is one error and nothing else; an item
/// longer than [`MAX_ITEM_LEN`] is an error; a regex over [`REGEX_SIZE_LIMIT`] does not compile.
/// Compiled items come from a bounded cache, and no lock is held while compiling.
pub fn parse_name_regex_list(key: &str, value: &str) -> NameRegexList {
    let mut list = NameRegexList::default();
    let count = split_list(value).count();
    if count > MAX_LIST_ITEMS {
        list.errors.push(ValueError::TooManyItems {
            key: key.into(),
            count,
            max: MAX_LIST_ITEMS,
        });
        return list;
    }
    for item in split_list(value) {
        if item.len() > MAX_ITEM_LEN {
            list.errors.push(ValueError::ItemTooLong {
                key: key.into(),
                item: quoted(item),
                len: item.len(),
                max: MAX_ITEM_LEN,
            });
            continue;
        }
        if is_plain(item) {
            list.patterns.push(NamePattern {
                item: item.to_string(),
                matcher: Matcher::Plain,
            });
            continue;
        }
        match compile(item) {
            Ok(regex) => list.patterns.push(NamePattern {
                item: item.to_string(),
                matcher: Matcher::Regex(regex),
            }),
            Err(reason) => list.errors.push(ValueError::BadRegex {
                key: key.into(),
                item: quoted(item),
                reason,
            }),
        }
    }
    list
}

/// How many items of a reload list [`parse_name_regex_list`] would compile now: the patterns
/// the cache does not hold (plain names, items over the length limit and lists over the item
/// limit compile nothing). A lookup, never a compile: the admission webhook asks it to keep
/// compiles off its async workers.
pub fn uncached_patterns(value: &str) -> usize {
    if split_list(value).count() > MAX_LIST_ITEMS {
        return 0;
    }
    let cache = patterns();
    split_list(value)
        .filter(|item| item.len() <= MAX_ITEM_LEN && !is_plain(item) && !cache.contains(item))
        .count()
}

/// Letters, digits, `-` and `_` only: the item matches exactly itself as a regex.
fn is_plain(item: &str) -> bool {
    item.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A compiled item, or the reason it does not compile. Failures are cached too: an item that
/// hits the size limit is the expensive one to compile.
type Compiled = Result<Regex, String>;

/// A cached item and its weight: 1 for a program within [`SMALL_REGEX`], `REGEX_SIZE_LIMIT /
/// SMALL_REGEX` (16) for a larger one.
#[derive(Clone)]
struct Cached {
    compiled: Compiled,
    weight: usize,
}

/// Compiled reload-list items by item text, bounded by weight: two generations of at most
/// [`PatternCache::GENERATION`] weight each, so at most 512 small programs (16 KiB each) or 32
/// large ones (256 KiB) are kept, about 8 MiB at worst. A hit in the older generation moves the
/// entry to the current one; when the current one is full it becomes the older one and the
/// previous older one is dropped. An approximate LRU with O(1) operations and a hard bound, in
/// a few lines: no dependency needed for it.
#[derive(Default)]
struct PatternCache {
    current: HashMap<String, Cached>,
    current_weight: usize,
    older: HashMap<String, Cached>,
}

impl PatternCache {
    const GENERATION: usize = 256;

    fn get(&mut self, item: &str) -> Option<Compiled> {
        if let Some(hit) = self.current.get(item) {
            return Some(hit.compiled.clone());
        }
        let (item, hit) = self.older.remove_entry(item)?;
        let compiled = hit.compiled.clone();
        self.insert(item, hit);
        Some(compiled)
    }

    /// Whether `item` is cached, without moving it.
    fn contains(&self, item: &str) -> bool {
        self.current.contains_key(item) || self.older.contains_key(item)
    }

    fn insert(&mut self, item: String, cached: Cached) {
        if self.current_weight + cached.weight > Self::GENERATION {
            self.older = std::mem::take(&mut self.current);
            self.current_weight = 0;
        }
        self.current_weight += cached.weight;
        if let Some(replaced) = self.current.insert(item, cached) {
            self.current_weight -= replaced.weight;
        }
    }
}

static PATTERNS: LazyLock<Mutex<PatternCache>> = LazyLock::new(Mutex::default);

fn patterns() -> std::sync::MutexGuard<'static, PatternCache> {
    // The cache holds no invariant a panic could break; keep using it.
    PATTERNS.lock().unwrap_or_else(|e| e.into_inner())
}

fn build(item: &str, size_limit: usize) -> Result<Regex, regex::Error> {
    RegexBuilder::new(&format!("^(?:{item})$"))
        .size_limit(size_limit)
        .dfa_size_limit(REGEX_DFA_SIZE_LIMIT)
        .build()
}

/// Compiles one item as a whole-name match, through the cache. The lock is held for the lookup
/// and the insert only, never while compiling (two threads may compile the same item once each).
fn compile(item: &str) -> Compiled {
    if let Some(hit) = patterns().get(item) {
        return hit;
    }
    // Small first: the compiler stops as soon as a program outgrows its limit.
    let (built, weight) = match build(item, SMALL_REGEX) {
        Err(regex::Error::CompiledTooBig(_)) => (build(item, REGEX_SIZE_LIMIT), REGEX_SIZE_LIMIT / SMALL_REGEX),
        built => (built, 1),
    };
    let compiled = built.map_err(|e| truncate_chars(&first_line(&e.to_string()), 2 * MAX_QUOTED));
    patterns().insert(
        item.to_string(),
        Cached {
            compiled: compiled.clone(),
            weight,
        },
    );
    compiled
}

/// The last line of a `regex` error carries the reason; the rest is an ASCII-art pointer.
fn first_line(message: &str) -> String {
    message
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or(message)
        .trim()
        .trim_start_matches("error: ")
        .to_string()
}

/// Comma list of exact names (exclude lists), trimmed, empty items dropped.
pub fn parse_name_list(value: &str) -> BTreeSet<String> {
    split_list(value).map(str::to_string).collect()
}

fn split_list(value: &str) -> impl Iterator<Item = &str> {
    value.split(',').map(str::trim).filter(|s| !s.is_empty())
}

/// Go's `time.ParseDuration`, restricted to non-negative values.
pub fn parse_go_duration(key: &str, value: &str) -> Result<Duration, ValueError> {
    let bad = || ValueError::BadDuration {
        key: key.into(),
        value: quoted(value),
    };
    let s = value.strip_prefix('+').unwrap_or(value);
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    if s.is_empty() || s.starts_with('-') {
        return Err(bad());
    }
    let mut rest = s;
    let mut total = 0f64;
    while !rest.is_empty() {
        let number_end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).ok_or_else(bad)?;
        let (number, tail) = rest.split_at(number_end);
        if number.is_empty() || number == "." || number.matches('.').count() > 1 {
            return Err(bad());
        }
        let number: f64 = number.parse().map_err(|_| bad())?;
        let unit_end = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_end);
        let nanos_per_unit = match unit {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return Err(bad()),
        };
        total += number * nanos_per_unit;
        rest = tail;
    }
    if !total.is_finite() || total > u64::MAX as f64 {
        return Err(bad());
    }
    Ok(Duration::from_nanos(total as u64))
}

/// The Argo Rollout strategy annotation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RolloutStrategy {
    /// Change the pod template (a new canary/blue-green rollout).
    Rollout,
    /// Set `spec.restartAt`, restarting pods without a new revision.
    Restart,
}

/// Stakater treats anything but `restart` as the default; the validator still flags values
/// that are neither, since they are almost certainly typos.
pub fn parse_rollout_strategy(key: &str, value: &str) -> Result<RolloutStrategy, ValueError> {
    match value {
        "restart" => Ok(RolloutStrategy::Restart),
        "rollout" | "" => Ok(RolloutStrategy::Rollout),
        _ => Err(ValueError::BadStrategy {
            key: key.into(),
            value: quoted(value),
        }),
    }
}

/// Checks one value against its key's syntax. Lists report only their first bad item.
pub fn check_value(spec: &KeySpec, value: &str) -> Result<(), ValueError> {
    match spec.syntax {
        ValueSyntax::Bool => parse_bool(&spec.key, value).map(drop),
        ValueSyntax::NameRegexList => match parse_name_regex_list(&spec.key, value).errors.into_iter().next() {
            Some(e) => Err(e),
            None => Ok(()),
        },
        ValueSyntax::Duration => parse_go_duration(&spec.key, value).map(drop),
        ValueSyntax::RolloutStrategy => parse_rollout_strategy(&spec.key, value).map(drop),
        ValueSyntax::TrueOrFalse => parse_switch(&spec.key, value).map(drop),
        ValueSyntax::ReloadWindow => parse_reload_window(&spec.key, value).map(drop),
        ValueSyntax::WaveSizes => parse_wave_sizes(&spec.key, value).map(drop),
        ValueSyntax::ExactTrue | ValueSyntax::NameList | ValueSyntax::Opaque => Ok(()),
    }
}

impl fmt::Display for Placement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Placement::WorkloadOrTemplate => "a workload or its pod template",
            Placement::WorkloadMetadata => "workload metadata",
            Placement::WorkloadMetadataOrNamespace => "workload metadata or its Namespace",
            Placement::Source => "a ConfigMap, Secret or SecretProviderClass",
            Placement::DeploymentMetadata => "Deployment metadata",
            Placement::RestartableMetadata => {
                "the metadata of an Argo Rollout, a Deployment, a StatefulSet or a DaemonSet"
            }
            Placement::Written => "objects written by the reloader only",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_default_key_is_known_with_its_flag() {
        let keys = AnnotationKeys::default();
        let cases = [
            (defaults::AUTO, Some("--auto-annotation")),
            (defaults::CONFIGMAP_AUTO, Some("--configmap-auto-annotation")),
            (defaults::SECRET_AUTO, Some("--secret-auto-annotation")),
            (defaults::CONFIGMAP_RELOAD, Some("--configmap-annotation")),
            (defaults::SECRET_RELOAD, Some("--secret-annotation")),
            (defaults::SEARCH, Some("--auto-search-annotation")),
            (defaults::MATCH, Some("--search-match-annotation")),
            (defaults::IGNORE, Some("--ignore-annotation")),
            (defaults::PAUSE_PERIOD, Some("--pause-deployment-annotation")),
            (defaults::PAUSED_AT, Some("--pause-deployment-time-annotation")),
            (fixed::SPC_AUTO, None),
            (fixed::SPC_RELOAD, None),
            (fixed::CONFIGMAPS_EXCLUDE, None),
            (fixed::SECRETS_EXCLUDE, None),
            (fixed::SPC_EXCLUDE, None),
            (fixed::ROLLOUT_STRATEGY, None),
            (fixed::LAST_RELOADED_FROM, None),
            (fixed::RELOAD_WINDOW, None),
            (fixed::RELOAD_NOW, None),
            (fixed::ROLLOUT_WAVES, None),
            (fixed::FIRST_WAVE, None),
            (fixed::PER_KEY, None),
            (fixed::RESTARTED_AT, None),
        ];
        for (key, flag) in cases {
            let spec = keys.spec(key).unwrap_or_else(|| panic!("{key} unknown"));
            assert_eq!(spec.flag, flag, "{key}");
        }
        assert_eq!(keys.specs().len(), 25);
    }

    #[test]
    fn placements_and_syntaxes_follow_stakater() {
        let keys = AnnotationKeys::default();
        let spec = |k| keys.spec(k).unwrap();
        assert_eq!(spec(defaults::AUTO).syntax, ValueSyntax::Bool);
        assert_eq!(spec(defaults::SEARCH).syntax, ValueSyntax::ExactTrue);
        assert_eq!(spec(defaults::MATCH).placement, Placement::Source);
        assert_eq!(spec(defaults::IGNORE).placement, Placement::Source);
        assert_eq!(spec(fixed::SECRETS_EXCLUDE).placement, Placement::WorkloadMetadata);
        assert_eq!(spec(defaults::PAUSE_PERIOD).placement, Placement::DeploymentMetadata);
        assert_eq!(spec(fixed::ROLLOUT_STRATEGY).placement, Placement::RestartableMetadata);
        assert_eq!(spec(fixed::SPC_RELOAD).syntax, ValueSyntax::NameRegexList);
    }

    #[test]
    fn renamed_keys_replace_defaults() {
        let keys = AnnotationKeys {
            auto: "example.com/auto".into(),
            ..Default::default()
        };
        assert!(keys.spec("example.com/auto").is_some());
        assert!(keys.spec(defaults::AUTO).is_none());
        // The renamed key's domain becomes one of ours for typo detection.
        assert_eq!(
            keys.classify("example.com/atuo"),
            KeyClass::UnknownInDomain {
                suggestion: Some("example.com/auto".into())
            }
        );
    }

    #[test]
    fn typos_get_suggestions() {
        let keys = AnnotationKeys::default();
        assert_eq!(
            keys.classify("reloader.stakater.com/atuo"),
            KeyClass::UnknownInDomain {
                suggestion: Some(defaults::AUTO.into())
            }
        );
        assert_eq!(
            keys.classify("configmaps.reloader.stakater.com/reload"),
            KeyClass::UnknownInDomain {
                suggestion: Some(defaults::CONFIGMAP_RELOAD.into())
            }
        );
        assert_eq!(
            keys.classify("reloader.stakatar.com/auto"),
            KeyClass::NearMiss {
                suggestion: Some(defaults::AUTO.into())
            }
        );
        assert_eq!(
            keys.classify("reloader.stakatar.com/something-else-entirely"),
            KeyClass::NearMiss { suggestion: None }
        );
        assert_eq!(
            keys.classify("reloader.stakater.com/completely-unrelated-word"),
            KeyClass::UnknownInDomain { suggestion: None }
        );
        assert_eq!(keys.classify("app.kubernetes.io/name"), KeyClass::Foreign);
        assert_eq!(keys.classify("kubectl.kubernetes.io/restartedAt"), KeyClass::Foreign);
        assert_eq!(keys.classify("no-slash"), KeyClass::Foreign);
        assert!(matches!(keys.classify(defaults::AUTO), KeyClass::Known(_)));
    }

    #[test]
    fn huge_keys_are_not_ours_and_cost_nothing() {
        let keys = AnnotationKeys::default();
        let huge = format!("reloader.stakater.com/{}", "a".repeat(3 << 20));
        assert_eq!(keys.classify(&huge), KeyClass::Foreign);
        let long = "x".repeat(300);
        assert_eq!(keys.classify(&long), KeyClass::Foreign);
    }

    #[test]
    fn osa_counts_transpositions_once() {
        assert_eq!(osa_distance("auto", "atuo"), 1);
        assert_eq!(osa_distance("", "abc"), 3);
        assert_eq!(osa_distance("kitten", "sitting"), 3);
        let chars = |s: &str| s.chars().collect::<Vec<char>>();
        let words = [
            "",
            "a",
            "ab",
            "ba",
            "abc",
            "auto",
            "atuo",
            "kitten",
            "sitting",
            "reloader.stakater.com/auto",
            "reloader.stakatar.com/auto",
            "reloader.stakater.com/atuo",
            "rleoader.stakater.com/search",
        ];
        for a in words {
            for b in words {
                let exact = osa_distance(a, b);
                for max in 0..6 {
                    let want = if exact <= max && a.len().abs_diff(b.len()) <= SUGGESTION_DISTANCE {
                        exact
                    } else {
                        max + 1
                    };
                    assert_eq!(bounded_osa(&chars(a), &chars(b), max), want, "{a:?} {b:?} {max}");
                }
            }
        }
    }

    #[test]
    fn go_bools() {
        for t in ["1", "t", "T", "TRUE", "true", "True"] {
            assert_eq!(parse_go_bool(t), Some(true), "{t}");
        }
        for f in ["0", "f", "F", "FALSE", "false", "False"] {
            assert_eq!(parse_go_bool(f), Some(false), "{f}");
        }
        for bad in ["yes", "tRUE", " true", ""] {
            assert_eq!(parse_go_bool(bad), None, "{bad:?}");
        }
        assert_eq!(
            parse_bool("k", "yes"),
            Err(ValueError::BadBool {
                key: "k".into(),
                value: "yes".into()
            })
        );
    }

    #[test]
    fn regex_lists_match_whole_names() {
        let list = parse_name_regex_list("k", " app-config-.* , db ,, ");
        assert_eq!(list.patterns.len(), 2);
        assert!(list.errors.is_empty());
        assert_eq!(list.matches("app-config-prod").unwrap().item, "app-config-.*");
        assert_eq!(list.matches("db").unwrap().item, "db");
        assert!(list.matches("xdb").is_none());
        assert!(list.matches("other-app-config-1").is_none());
        // Empty names never match, whatever the list (Stakater's tombstone hazard).
        assert!(parse_name_regex_list("k", ".*").matches("").is_none());
        // Alternation is grouped.
        let alt = parse_name_regex_list("k", "a|b");
        assert!(alt.matches("a").is_some() && alt.matches("b").is_some());
        assert!(alt.matches("abc").is_none() && alt.matches("cab").is_none());
    }

    #[test]
    fn bad_regex_items_are_reported_and_skipped() {
        let list = parse_name_regex_list("k", "good,bad(");
        assert_eq!(list.patterns.len(), 1);
        match &list.errors[..] {
            [ValueError::BadRegex { item, reason, .. }] => {
                assert_eq!(item, "bad(");
                assert!(reason.contains("unclosed group"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn long_lists_and_items_are_errors_that_quote_little() {
        let many = (0..=MAX_LIST_ITEMS)
            .map(|i| format!("cfg-{i}"))
            .collect::<Vec<_>>()
            .join(",");
        let list = parse_name_regex_list("k", &many);
        assert!(list.patterns.is_empty(), "a list over the limit is skipped whole");
        assert_eq!(
            list.errors,
            vec![ValueError::TooManyItems {
                key: "k".into(),
                count: MAX_LIST_ITEMS + 1,
                max: MAX_LIST_ITEMS
            }]
        );
        let at_limit = (0..MAX_LIST_ITEMS)
            .map(|i| format!("cfg-{i}"))
            .collect::<Vec<_>>()
            .join(",");
        assert_eq!(parse_name_regex_list("k", &at_limit).patterns.len(), MAX_LIST_ITEMS);
        let long = "a".repeat(MAX_ITEM_LEN + 1);
        let list = parse_name_regex_list("k", &format!("ok,{long},also-.*"));
        assert_eq!(list.patterns.len(), 2, "the other items still count");
        let message = list.errors[0].to_string();
        assert!(message.contains("is 513 bytes long; at most 512"), "{message}");
        assert!(message.len() < 200, "{message}");
        // A huge value is counted, never copied into the message.
        let huge = "x,".repeat(1_500_000);
        let message = parse_name_regex_list("k", &huge).errors[0].to_string();
        assert_eq!(message, "k: the list has 1500000 items; at most 100 are allowed");
        let bool_message = parse_bool("k", &"y".repeat(10_000)).unwrap_err().to_string();
        assert!(bool_message.len() < 150, "{bool_message}");
    }

    #[test]
    fn patterns_compile_within_a_size_limit() {
        // Tiny text, huge program: refused by the size limit, quickly.
        let started = std::time::Instant::now();
        let list = parse_name_regex_list("k", "(((a{100}){100}){100})");
        match &list.errors[..] {
            [ValueError::BadRegex { reason, .. }] => assert!(reason.contains("size limit"), "{reason}"),
            other => panic!("{other:?}"),
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
        assert_eq!(parse_name_regex_list("k", "\\w{10}").errors.len(), 1);
        // Realistic patterns fit comfortably.
        for item in [
            "app-config-.*",
            "(alpha|beta|gamma|delta)-config-(prod|staging|dev)",
            "[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*",
            "team-[a-z]+-db-credentials-v[0-9]{3}",
            ".*-(config|settings)-v[0-9]+",
            "\\w+-settings",
        ] {
            let list = parse_name_regex_list("k", item);
            assert!(list.errors.is_empty(), "{item}: {:?}", list.errors);
        }
    }

    #[test]
    fn uncached_patterns_counts_what_a_parse_would_compile() {
        // Unique to this test: the cache is shared by the whole test binary.
        let list = "plain-name, uncached-a-.*, uncached-b-[0-9]+ ,uncached-a-.*";
        assert_eq!(uncached_patterns(list), 3);
        let long = format!("{}.*", "x".repeat(MAX_ITEM_LEN));
        assert_eq!(
            uncached_patterns(&long),
            0,
            "an over-long item is an error, not a compile"
        );
        let many = vec!["many-.*"; MAX_LIST_ITEMS + 1].join(",");
        assert_eq!(uncached_patterns(&many), 0, "a list over the limit is one error");
        parse_name_regex_list("k", list);
        assert_eq!(uncached_patterns(list), 0);
    }

    #[test]
    fn the_pattern_cache_is_bounded_and_answers_like_a_fresh_compile() {
        let mut cache = PatternCache::default();
        let small = || Cached {
            compiled: Err(String::new()),
            weight: 1,
        };
        for i in 0..(3 * PatternCache::GENERATION) {
            cache.insert(format!("p{i}-.*"), small());
            assert!(cache.current.len() + cache.older.len() <= 2 * PatternCache::GENERATION);
        }
        // The newest survive; a hit in the older generation moves up.
        let oldest_kept = format!("p{}-.*", PatternCache::GENERATION);
        assert!(cache.older.contains_key(&oldest_kept));
        assert!(cache.get(&oldest_kept).is_some());
        assert!(cache.current.contains_key(&oldest_kept));
        assert!(cache.get("p0-.*").is_none());
        // Large programs weigh more: a generation holds 16 of them.
        for i in 0..100 {
            let large = Cached {
                compiled: Err(String::new()),
                weight: REGEX_SIZE_LIMIT / SMALL_REGEX,
            };
            cache.insert(format!("large{i}"), large);
            let older: usize = cache.older.values().map(|c| c.weight).sum();
            assert!(cache.current_weight <= PatternCache::GENERATION);
            assert!(older <= PatternCache::GENERATION);
        }
        assert!(cache.current.len() + cache.older.len() <= 2 * 16);
        // Re-inserting an entry does not count it twice.
        cache.insert("large99".into(), small());
        assert_eq!(
            cache.current_weight,
            cache.current.values().map(|c| c.weight).sum::<usize>()
        );
        // Through the shared cache, twice: same answers.
        for _ in 0..2 {
            let list = parse_name_regex_list("k", "cached-.*,bad(");
            assert!(list.matches("cached-x").is_some());
            assert!(list.matches("cached").is_none());
            assert_eq!(list.errors.len(), 1);
        }
    }

    #[test]
    fn plain_items_match_exactly_like_their_regex() {
        let list = parse_name_regex_list("k", "app-config,db_1");
        for (name, want) in [
            ("app-config", true),
            ("app-configx", false),
            ("db_1", true),
            ("", false),
        ] {
            assert_eq!(list.matches(name).is_some(), want, "{name}");
        }
        assert!(is_plain("app-config") && !is_plain("app.config") && !is_plain("a|b"));
    }

    #[test]
    fn literal_names() {
        let list = parse_name_regex_list("k", "www.stakater.com,app-.*");
        assert!(list.patterns[0].is_literal_name());
        assert!(!list.patterns[1].is_literal_name());
    }

    #[test]
    fn go_durations() {
        let ok = [
            ("0", 0),
            ("5m", 300_000_000_000),
            ("1h30m", 5_400_000_000_000),
            ("1.5s", 1_500_000_000),
            ("300ms", 300_000_000),
            ("10us", 10_000),
            ("2µs", 2_000),
            ("+10s", 10_000_000_000),
        ];
        for (text, nanos) in ok {
            assert_eq!(parse_go_duration("k", text).unwrap().as_nanos(), nanos, "{text}");
        }
        for bad in ["", "5", "-5m", "5 m", "m", "1.2.3s", "5d", ".s"] {
            assert!(parse_go_duration("k", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn rollout_strategy_values() {
        assert_eq!(parse_rollout_strategy("k", "restart"), Ok(RolloutStrategy::Restart));
        assert_eq!(parse_rollout_strategy("k", "rollout"), Ok(RolloutStrategy::Rollout));
        assert!(parse_rollout_strategy("k", "restrat").is_err());
    }

    #[test]
    fn check_value_uses_the_key_syntax() {
        let keys = AnnotationKeys::default();
        let spec = |k| keys.spec(k).unwrap();
        assert!(check_value(&spec(defaults::AUTO), "ture").is_err());
        assert!(check_value(&spec(defaults::AUTO), "true").is_ok());
        assert!(check_value(&spec(defaults::CONFIGMAP_RELOAD), "a,(").is_err());
        assert!(check_value(&spec(defaults::PAUSE_PERIOD), "5 minutes").is_err());
        assert!(check_value(&spec(fixed::ROLLOUT_STRATEGY), "restrat").is_err());
        assert!(check_value(&spec(defaults::SEARCH), "whatever").is_ok());
    }

    #[test]
    fn reload_windows_and_waves_are_ours_and_checked() {
        let keys = AnnotationKeys::default();
        let spec = |k| keys.spec(k).unwrap();
        let window = spec(fixed::RELOAD_WINDOW);
        assert_eq!(
            (window.placement, window.syntax, window.flag),
            (Placement::WorkloadMetadataOrNamespace, ValueSyntax::ReloadWindow, None)
        );
        assert_eq!(spec(fixed::ROLLOUT_WAVES).placement, Placement::Source);
        assert_eq!(spec(fixed::RELOAD_NOW).placement, Placement::WorkloadMetadata);
        assert_eq!(spec(fixed::FIRST_WAVE).syntax, ValueSyntax::TrueOrFalse);
        for good in [
            "Mon-Fri 02:00-04:00 Europe/Berlin",
            "22:00-06:00",
            "Mon-Fri 02:00-04:00; Sat,Sun 00:00-23:59 UTC",
        ] {
            assert_eq!(check_value(&window, good), Ok(()), "{good}");
        }
        let bad = check_value(&window, "Mon-Fri 02:00-02:00").unwrap_err().to_string();
        assert!(
            bad.starts_with("reloader.stakater.com/reload-window: window \"Mon-Fri 02:00-02:00\": start and end"),
            "{bad}"
        );
        assert!(check_value(&window, "weekdays 2-4").is_err());
        let waves = spec(fixed::ROLLOUT_WAVES);
        assert_eq!(check_value(&waves, "1,10%,100%"), Ok(()));
        assert_eq!(
            check_value(&waves, "0").unwrap_err().to_string(),
            "reloader.stakater.com/rollout-waves: wave \"0\" adds nobody: a wave is a count of at least 1 or a \
             percentage from 1% to 100%"
        );
        for key in [fixed::RELOAD_NOW, fixed::FIRST_WAVE, fixed::PER_KEY] {
            assert_eq!(check_value(&spec(key), "true"), Ok(()));
            assert_eq!(check_value(&spec(key), "false"), Ok(()));
            for bad in ["True", "yes", "1", ""] {
                assert_eq!(
                    check_value(&spec(key), bad),
                    Err(ValueError::BadSwitch {
                        key: key.into(),
                        value: bad.into()
                    })
                );
            }
        }
        assert_eq!(
            parse_switch("k", "yes").unwrap_err().to_string(),
            "k: \"yes\" is not a switch (use \"true\", or \"false\" or no annotation for off)"
        );
        assert_eq!(
            parse_wave_sizes("k", "1,50%").map(|w| w.boundaries(4)),
            Ok(vec![1, 2, 4])
        );
        assert_eq!(parse_reload_window("k", "01:00-02:00").map(|w| w.len()), Ok(1));
    }

    #[test]
    fn the_annotations_page_lists_every_key() {
        let page = include_str!("../../docs/annotations.md");
        for spec in AnnotationKeys::default().specs() {
            assert!(
                page.contains(&format!("| `{}` |", spec.key)),
                "docs/annotations.md lacks {}",
                spec.key
            );
        }
    }

    #[test]
    fn typos_of_the_window_and_wave_keys_get_suggestions() {
        let keys = AnnotationKeys::default();
        for (typo, meant) in [
            ("reloader.stakater.com/reload-windows", fixed::RELOAD_WINDOW),
            ("reloader.stakater.com/reload-widnow", fixed::RELOAD_WINDOW),
            ("reloader.stakater.com/reloadwindow", fixed::RELOAD_WINDOW),
            ("reloader.stakater.com/reloadnow", fixed::RELOAD_NOW),
            ("reloader.stakater.com/rollout-wave", fixed::ROLLOUT_WAVES),
            ("reloader.stakater.com/rolout-waves", fixed::ROLLOUT_WAVES),
            ("reloader.stakater.com/first-waves", fixed::FIRST_WAVE),
            ("reloader.stakater.com/perkey", fixed::PER_KEY),
            ("reloader.stakater.com/per-keys", fixed::PER_KEY),
        ] {
            assert_eq!(
                keys.classify(typo),
                KeyClass::UnknownInDomain {
                    suggestion: Some(meant.into())
                },
                "{typo}"
            );
        }
        assert_eq!(
            keys.classify("reloader.stakatar.com/rollout-waves"),
            KeyClass::NearMiss {
                suggestion: Some(fixed::ROLLOUT_WAVES.into())
            }
        );
        for key in [
            fixed::RELOAD_WINDOW,
            fixed::RELOAD_NOW,
            fixed::ROLLOUT_WAVES,
            fixed::FIRST_WAVE,
        ] {
            assert!(matches!(keys.classify(key), KeyClass::Known(_)), "{key}");
        }
    }
}
