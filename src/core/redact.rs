//! URLs as they may be shown: in logs, error messages and the `reloader-meta-info` ConfigMap.
//! Outbound webhook URLs (`--webhook-url`, `ALERT_WEBHOOK_URL`, `ALERT_WEBHOOK_PROXY`) often are
//! credentials themselves: a Slack or Teams incoming webhook is its path, Google Chat's carries
//! `key` and `token` in the query, a proxy its user and password. Everything that shows one calls
//! [`url`]; only the HTTP client ever holds the URL as given.

/// What replaces each hidden part.
pub const REDACTED: &str = "<redacted>";

/// Hosts whose webhook URL path after its first segment is the secret (Slack's
/// `/services/T…/B…/…`, Discord's `/api/webhooks/<id>/<token>`, Google Chat's space, Teams'
/// connector and workflow ids).
const SECRET_PATH_HOSTS: &[&str] = &[
    "hooks.slack.com",
    "chat.googleapis.com",
    "discord.com",
    "discordapp.com",
    "outlook.office.com",
    "outlook.office365.com",
];

/// The same, for every host under these domains (Teams' `<tenant>.webhook.office.com`, Power
/// Automate workflows).
const SECRET_PATH_DOMAINS: &[&str] = &[".webhook.office.com", ".logic.azure.com", ".api.powerplatform.com"];

/// `raw` with every part that may be a secret replaced by [`REDACTED`]: the user information
/// (`user:password@`), the query, the fragment; on the well-known webhook hosts the path after
/// its first segment; elsewhere each path segment that looks like a token (16 characters or
/// more of letters and digits, both present, as ids, UUIDs and keys are). The scheme, host, port
/// and the rest of the path stay, so the message still says where. Works on any string,
/// including one that does not parse as a URL (the error that says so shows it).
pub fn url(raw: &str) -> String {
    let (scheme, rest) = match raw.find("://") {
        Some(at) if !raw[..at].contains(['/', '?', '#', '@']) => raw.split_at(at + 3),
        _ => ("", raw),
    };
    let mut out = String::with_capacity(raw.len());
    out.push_str(scheme);
    // User information ends at the last '@' before the first '/': a raw '#' or '?' in a
    // password must not pass for a fragment or a query that leaves the rest shown.
    let before_path = rest.find('/').map_or(rest, |at| &rest[..at]);
    let rest = match before_path.rfind('@') {
        Some(at) => {
            out.push_str(REDACTED);
            out.push('@');
            &rest[at + 1..]
        }
        None => rest,
    };
    let (rest, fragment) = match rest.split_once('#') {
        Some((rest, fragment)) => (rest, Some(fragment)),
        None => (rest, None),
    };
    let (rest, query) = match rest.split_once('?') {
        Some((rest, query)) => (rest, Some(query)),
        None => (rest, None),
    };
    let (host_port, path) = match rest.find('/') {
        Some(at) => rest.split_at(at),
        None => (rest, ""),
    };
    out.push_str(&shown_host_port(host_port));
    if secret_path_host(host_port) {
        match path.strip_prefix('/').and_then(|p| p.split_once('/')) {
            Some((first, more)) if !more.is_empty() => {
                out.push('/');
                out.push_str(if looks_like_a_token(first) { REDACTED } else { first });
                out.push('/');
                out.push_str(REDACTED);
            }
            _ => out.push_str(path),
        }
    } else {
        for (i, segment) in path.split('/').enumerate() {
            if i > 0 {
                out.push('/');
            }
            out.push_str(if looks_like_a_token(segment) { REDACTED } else { segment });
        }
    }
    if let Some(query) = query {
        out.push('?');
        if !query.is_empty() {
            out.push_str(REDACTED);
        }
    }
    if let Some(fragment) = fragment {
        out.push('#');
        if !fragment.is_empty() {
            out.push_str(REDACTED);
        }
    }
    out
}

/// `host:port` as given, unless the "port" is not a number: then it is probably a password cut
/// off by a '/' in it (`user:pa/ss@host`), and hidden.
fn shown_host_port(host_port: &str) -> String {
    let port = match host_port.strip_prefix('[') {
        Some(v6) => v6.split_once(']').map(|(_, after)| after),
        None => Some(host_port),
    }
    .and_then(|after| after.split_once(':'))
    .map(|(_, port)| port);
    match port {
        Some(port) if !port.is_empty() && !port.bytes().all(|b| b.is_ascii_digit()) => {
            format!("{}:{REDACTED}", &host_port[..host_port.len() - port.len() - 1])
        }
        _ => host_port.to_string(),
    }
}

/// Flags that carry a URL (Stakater's `--webhook-url`; ours, `--admission-url`).
const URL_FLAGS: &[&str] = &["--webhook-url", "-webhook-url", "--admission-url"];

/// A command line as it may be shown: the value of each URL flag through [`url`], in both the
/// `--flag=value` and the `--flag value` forms; every other argument as given.
pub fn flags(args: &[String]) -> Vec<String> {
    let mut out = Vec::with_capacity(args.len());
    let mut value_next = false;
    for arg in args {
        if std::mem::take(&mut value_next) {
            out.push(url(arg));
            continue;
        }
        match arg.split_once('=') {
            Some((flag, value)) if URL_FLAGS.contains(&flag) => out.push(format!("{flag}={}", url(value))),
            _ => {
                value_next = URL_FLAGS.contains(&arg.as_str());
                out.push(arg.clone());
            }
        }
    }
    out
}

/// Whether `host_port` (`host`, `host:port`, `[v6]:port`) is one of the well-known webhook hosts.
fn secret_path_host(host_port: &str) -> bool {
    let host = match host_port.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => host_port.split(':').next().unwrap_or_default(),
    };
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    SECRET_PATH_HOSTS.contains(&host.as_str()) || SECRET_PATH_DOMAINS.iter().any(|d| host.ends_with(d))
}

/// A path segment that is probably an id or a key rather than a word: long, of the characters
/// tokens are made of, with letters and digits both.
fn looks_like_a_token(segment: &str) -> bool {
    // An '@' has no business in a path segment but after a password cut off by a '/'.
    if segment.contains('@') {
        return true;
    }
    segment.len() >= 16
        && segment
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.~%=+@".contains(&b))
        && segment.bytes().any(|b| b.is_ascii_digit())
        && segment.bytes().any(|b| b.is_ascii_alphabetic())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn userinfo_query_and_fragment_are_hidden() {
        assert_eq!(
            url("https://alice:s3cret@hooks.example.com:8443/notify?token=abc&x=1#frag"),
            "https://<redacted>@hooks.example.com:8443/notify?<redacted>#<redacted>"
        );
        assert_eq!(url("http://user@proxy:3128"), "http://<redacted>@proxy:3128");
        // An '@' in the password: the last one ends the user information.
        assert_eq!(url("http://u:p@ss@proxy:3128/"), "http://<redacted>@proxy:3128/");
        assert_eq!(url("https://[::1]:8080/x?k=v"), "https://[::1]:8080/x?<redacted>");
    }

    #[test]
    fn urls_without_secrets_stay_as_they_are() {
        for plain in [
            "",
            "https://example.com",
            "https://example.com/",
            "https://example.com/api/v1/notify",
            "http://127.0.0.1:9000/hook",
            "https://example.com/hooks/reloader-production-alerts",
            "https://example.com/a?",
        ] {
            assert_eq!(url(plain), plain);
        }
    }

    #[test]
    fn well_known_webhook_paths_keep_their_first_segment() {
        assert_eq!(
            url("https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX"),
            "https://hooks.slack.com/services/<redacted>"
        );
        assert_eq!(
            url("https://HOOKS.SLACK.COM./services/T0/B0/x"),
            "https://HOOKS.SLACK.COM./services/<redacted>"
        );
        assert_eq!(
            url("https://chat.googleapis.com/v1/spaces/AAAAxyz/messages?key=K&token=T"),
            "https://chat.googleapis.com/v1/<redacted>?<redacted>"
        );
        assert_eq!(
            url("https://contoso.webhook.office.com/webhookb2/a-b@c-d/IncomingWebhook/e/f"),
            "https://contoso.webhook.office.com/webhookb2/<redacted>"
        );
        assert_eq!(
            url("https://discord.com/api/webhooks/123/tok"),
            "https://discord.com/api/<redacted>"
        );
        assert_eq!(
            url("https://prod-01.westus.logic.azure.com:443/workflows/abc/triggers/manual/paths/invoke?sig=S"),
            "https://prod-01.westus.logic.azure.com:443/workflows/<redacted>?<redacted>"
        );
        assert_eq!(
            url("https://hooks.slack.com/services"),
            "https://hooks.slack.com/services"
        );
        assert_eq!(url("https://hooks.slack.com/"), "https://hooks.slack.com/");
        // Not the host, only a look-alike.
        assert_eq!(
            url("https://hooks.slack.com.example.org/services/a"),
            "https://hooks.slack.com.example.org/services/a"
        );
    }

    #[test]
    fn token_like_path_segments_are_hidden_on_any_host() {
        assert_eq!(
            url("https://n8n.example.com/webhook/3f2a9c8e-1c2b-4d5e-8f90-123456789abc"),
            "https://n8n.example.com/webhook/<redacted>"
        );
        assert_eq!(
            url("https://example.com/hooks/Zm9vYmFyYmF6cXV4MTIz/send"),
            "https://example.com/hooks/<redacted>/send"
        );
    }

    #[test]
    fn strings_that_are_not_urls_are_redacted_too() {
        // What an invalid `--webhook-url` error shows.
        assert_eq!(url("https://user:pa ss@host/x y"), "https://<redacted>@host/x y");
        assert_eq!(
            url("hooks.slack.com/services/T0/B0/secret"),
            "hooks.slack.com/services/<redacted>"
        );
        assert_eq!(url("u:p@host"), "<redacted>@host");
        assert_eq!(url("?secret"), "?<redacted>");
        // Raw '#', '?' or '/' in a password (they should be percent-encoded; the error for
        // such a URL shows it).
        assert_eq!(url("https://u:p#ss@host/x"), "https://<redacted>@host/x");
        assert_eq!(url("https://u:p?ss@host/x?q"), "https://<redacted>@host/x?<redacted>");
        assert_eq!(url("https://u:pa/ss@host/x"), "https://u:<redacted>/<redacted>/x");
        assert_eq!(url("https://host:8443/x"), "https://host:8443/x");
        assert_eq!(url("https://[::1]/x"), "https://[::1]/x");
    }

    #[test]
    fn url_flags_are_redacted_in_a_command_line() {
        let args: Vec<String> = [
            "--auto-reload-all",
            "--webhook-url=https://hooks.slack.com/services/T0/B0/secret",
            "--webhook-url",
            "https://me:pw@example.com/x?token=t",
            "--namespace-selector=team=a",
            "-webhook-url=https://example.com/?k=v",
        ]
        .map(String::from)
        .into();
        assert_eq!(
            flags(&args),
            [
                "--auto-reload-all",
                "--webhook-url=https://hooks.slack.com/services/<redacted>",
                "--webhook-url",
                "https://<redacted>@example.com/x?<redacted>",
                "--namespace-selector=team=a",
                "-webhook-url=https://example.com/?<redacted>",
            ]
        );
    }

    /// Whatever the input, no secret part survives: a URL built from known pieces never shows
    /// its password, query or fragment.
    #[test]
    fn no_secret_survives_any_shape() {
        let secret = "Sup3rS3cretValue";
        for scheme in ["", "https://", "http://"] {
            for host in ["example.com", "hooks.slack.com", "10.0.0.1:80", "[fe80::1]:443"] {
                for path in ["", "/", "/a", "/services/x/y"] {
                    for (user, query, fragment) in [(true, false, false), (false, true, false), (false, false, true)] {
                        let raw = format!(
                            "{scheme}{}{host}{path}{}{}",
                            if user { format!("me:{secret}@") } else { String::new() },
                            if query { format!("?k={secret}") } else { String::new() },
                            if fragment { format!("#{secret}") } else { String::new() },
                        );
                        let shown = url(&raw);
                        assert!(!shown.contains(secret), "{raw} -> {shown}");
                        assert!(shown.contains(host), "{raw} -> {shown}");
                    }
                    // A password with a raw '#', '?' or '/' in it: no part of it is shown.
                    for cut in ['#', '?', '/'] {
                        let raw = format!("{scheme}me:Sup3r{cut}S3cretValue@{host}{path}");
                        let shown = url(&raw);
                        assert!(
                            !shown.contains("Sup3r") && !shown.contains("S3cret"),
                            "{raw} -> {shown}"
                        );
                    }
                }
            }
        }
    }
}
