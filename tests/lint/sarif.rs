//! The SARIF output against the SARIF 2.1.0 JSON schema (OASIS, `sarif-schema-2.1.0.json`).
//!
//! The schema file is not vendored: it is published under the OASIS IPR policy, not an
//! open-source licence this Apache-2.0 repository can redistribute, and no JSON Schema validator
//! is in the dependency tree. Instead, every constraint the schema places on the objects this
//! tool emits is checked explicitly below: for each object, its required properties, that it
//! has no property the schema does not define (the schema sets `additionalProperties: false`
//! on all of them), the enumerations (`version`, `level`, `columnKind`), the minimums
//! (`startLine`, `startColumn` ≥ 1, `ruleIndex` ≥ -1), types, `uri-reference` syntax, and the
//! cross-object rules of the specification (§3.27.6: `rules[ruleIndex].id == ruleId`; rule ids
//! unique).

use std::collections::BTreeSet;

use serde_json::Value;

use crate::reloader;

struct Shape {
    name: &'static str,
    required: &'static [&'static str],
    allowed: &'static [&'static str],
}

const LOG: Shape = Shape {
    name: "sarifLog",
    required: &["version", "runs"],
    allowed: &["$schema", "version", "runs", "inlineExternalProperties", "properties"],
};
const RUN: Shape = Shape {
    name: "run",
    required: &["tool"],
    allowed: &[
        "tool",
        "invocations",
        "conversion",
        "language",
        "versionControlProvenance",
        "originalUriBaseIds",
        "artifacts",
        "logicalLocations",
        "graphs",
        "results",
        "automationDetails",
        "runAggregates",
        "baselineGuid",
        "redactionTokens",
        "defaultEncoding",
        "defaultSourceLanguage",
        "newlineSequences",
        "columnKind",
        "externalPropertyFileReferences",
        "threadFlowLocations",
        "taxonomies",
        "addresses",
        "translations",
        "policies",
        "webRequests",
        "webResponses",
        "specialLocations",
        "properties",
    ],
};
const TOOL: Shape = Shape {
    name: "tool",
    required: &["driver"],
    allowed: &["driver", "extensions", "properties"],
};
const TOOL_COMPONENT: Shape = Shape {
    name: "toolComponent",
    required: &["name"],
    allowed: &[
        "guid",
        "name",
        "organization",
        "product",
        "productSuite",
        "shortDescription",
        "fullDescription",
        "fullName",
        "version",
        "semanticVersion",
        "dottedQuadFileVersion",
        "releaseDateUtc",
        "downloadUri",
        "informationUri",
        "globalMessageStrings",
        "notifications",
        "rules",
        "taxa",
        "locations",
        "language",
        "contents",
        "isComprehensive",
        "localizedDataSemanticVersion",
        "minimumRequiredLocalizedDataSemanticVersion",
        "associatedComponent",
        "translationMetadata",
        "supportedTaxonomies",
        "properties",
    ],
};
const REPORTING_DESCRIPTOR: Shape = Shape {
    name: "reportingDescriptor",
    required: &["id"],
    allowed: &[
        "id",
        "deprecatedIds",
        "guid",
        "deprecatedGuids",
        "name",
        "deprecatedNames",
        "shortDescription",
        "fullDescription",
        "messageStrings",
        "defaultConfiguration",
        "helpUri",
        "help",
        "relationships",
        "properties",
    ],
};
const MULTIFORMAT_MESSAGE: Shape = Shape {
    name: "multiformatMessageString",
    required: &["text"],
    allowed: &["text", "markdown", "properties"],
};
const REPORTING_CONFIGURATION: Shape = Shape {
    name: "reportingConfiguration",
    required: &[],
    allowed: &["enabled", "level", "rank", "parameters", "properties"],
};
const INVOCATION: Shape = Shape {
    name: "invocation",
    required: &["executionSuccessful"],
    allowed: &[
        "commandLine",
        "arguments",
        "responseFiles",
        "startTimeUtc",
        "endTimeUtc",
        "exitCode",
        "ruleConfigurationOverrides",
        "notificationConfigurationOverrides",
        "toolExecutionNotifications",
        "toolConfigurationNotifications",
        "exitCodeDescription",
        "exitSignalName",
        "exitSignalNumber",
        "processStartFailureMessage",
        "executionSuccessful",
        "machine",
        "account",
        "processId",
        "executableLocation",
        "workingDirectory",
        "environmentVariables",
        "stdin",
        "stdout",
        "stderr",
        "stdoutStderr",
        "properties",
    ],
};
const RESULT: Shape = Shape {
    name: "result",
    required: &["message"],
    allowed: &[
        "ruleId",
        "ruleIndex",
        "rule",
        "kind",
        "level",
        "message",
        "analysisTarget",
        "locations",
        "guid",
        "correlationGuid",
        "occurrenceCount",
        "partialFingerprints",
        "fingerprints",
        "stacks",
        "codeFlows",
        "graphs",
        "graphTraversals",
        "relatedLocations",
        "suppressions",
        "baselineState",
        "rank",
        "attachments",
        "hostedViewerUri",
        "workItemUris",
        "provenance",
        "fixes",
        "taxa",
        "webRequest",
        "webResponse",
        "properties",
    ],
};
const MESSAGE: Shape = Shape {
    name: "message",
    required: &[],
    allowed: &["text", "markdown", "id", "arguments", "properties"],
};
const LOCATION: Shape = Shape {
    name: "location",
    required: &[],
    allowed: &[
        "id",
        "physicalLocation",
        "logicalLocations",
        "message",
        "annotations",
        "relationships",
        "properties",
    ],
};
const PHYSICAL_LOCATION: Shape = Shape {
    name: "physicalLocation",
    required: &[],
    allowed: &["address", "artifactLocation", "region", "contextRegion", "properties"],
};
const ARTIFACT_LOCATION: Shape = Shape {
    name: "artifactLocation",
    required: &[],
    allowed: &["uri", "uriBaseId", "index", "description", "properties"],
};
const REGION: Shape = Shape {
    name: "region",
    required: &[],
    allowed: &[
        "startLine",
        "startColumn",
        "endLine",
        "endColumn",
        "charOffset",
        "charLength",
        "byteOffset",
        "byteLength",
        "snippet",
        "sourceLanguage",
        "message",
        "properties",
    ],
};

const LEVELS: [&str; 4] = ["none", "note", "warning", "error"];

struct Checker {
    errors: Vec<String>,
}

impl Checker {
    fn object<'v>(&mut self, v: &'v Value, at: &str, shape: &Shape) -> Option<&'v serde_json::Map<String, Value>> {
        let Some(map) = v.as_object() else {
            self.errors.push(format!("{at}: {} must be an object", shape.name));
            return None;
        };
        for key in shape.required {
            if !map.contains_key(*key) {
                self.errors.push(format!("{at}: {} requires {key}", shape.name));
            }
        }
        for key in map.keys() {
            if !shape.allowed.contains(&key.as_str()) {
                self.errors.push(format!("{at}: {} has no property {key}", shape.name));
            }
        }
        Some(map)
    }

    fn string(&mut self, v: Option<&Value>, at: &str) -> Option<String> {
        match v {
            None => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => {
                self.errors.push(format!("{at}: must be a string"));
                None
            }
        }
    }

    fn integer_at_least(&mut self, v: Option<&Value>, at: &str, min: i64) {
        if let Some(v) = v {
            match v.as_i64() {
                Some(n) if n >= min => {}
                _ => self.errors.push(format!("{at}: must be an integer >= {min}, is {v}")),
            }
        }
    }

    fn level(&mut self, v: Option<&Value>, at: &str) {
        if let Some(level) = self.string(v, at)
            && !LEVELS.contains(&level.as_str())
        {
            self.errors
                .push(format!("{at}: level {level:?} is not one of {LEVELS:?}"));
        }
    }

    fn array<'v>(&mut self, v: Option<&'v Value>, at: &str) -> &'v [Value] {
        match v {
            None => &[],
            Some(Value::Array(items)) => items,
            Some(_) => {
                self.errors.push(format!("{at}: must be an array"));
                &[]
            }
        }
    }

    fn message(&mut self, v: &Value, at: &str, shape: &Shape) {
        if let Some(map) = self.object(v, at, shape) {
            if shape.name == "message" && !map.contains_key("text") && !map.contains_key("id") {
                self.errors.push(format!("{at}: message requires text or id"));
            }
            self.string(map.get("text"), &format!("{at}.text"));
        }
    }

    /// RFC 3986 `URI-reference` characters, with well-formed percent-encodings.
    fn uri_reference(&mut self, uri: &str, at: &str) {
        let bytes = uri.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            let b = bytes[i];
            if b == b'%' {
                let hex = |c: Option<&u8>| c.is_some_and(u8::is_ascii_hexdigit);
                if !(hex(bytes.get(i + 1)) && hex(bytes.get(i + 2))) {
                    self.errors.push(format!("{at}: bad percent-encoding in {uri:?}"));
                }
                i += 3;
                continue;
            }
            if !(b.is_ascii_alphanumeric() || b"-._~:/?#[]@!$&'()*+,;=".contains(&b)) {
                self.errors
                    .push(format!("{at}: {uri:?} is not a URI reference ({:?})", b as char));
            }
            i += 1;
        }
        if uri.is_empty() {
            self.errors.push(format!("{at}: empty uri"));
        }
    }

    fn location(&mut self, v: &Value, at: &str) {
        let Some(map) = self.object(v, at, &LOCATION) else {
            return;
        };
        let Some(physical) = map.get("physicalLocation") else {
            return;
        };
        let at = format!("{at}.physicalLocation");
        let Some(physical) = self.object(physical, &at, &PHYSICAL_LOCATION) else {
            return;
        };
        if !physical.contains_key("artifactLocation") && !physical.contains_key("address") {
            self.errors.push(format!("{at}: requires artifactLocation or address"));
        }
        if let Some(artifact) = physical.get("artifactLocation") {
            let at = format!("{at}.artifactLocation");
            if let Some(artifact) = self.object(artifact, &at, &ARTIFACT_LOCATION)
                && let Some(uri) = self.string(artifact.get("uri"), &format!("{at}.uri"))
            {
                self.uri_reference(&uri, &at);
            }
        }
        if let Some(region) = physical.get("region") {
            let at = format!("{at}.region");
            if let Some(region) = self.object(region, &at, &REGION) {
                for key in ["startLine", "startColumn", "endLine", "endColumn"] {
                    self.integer_at_least(region.get(key), &format!("{at}.{key}"), 1);
                }
            }
        }
    }

    fn log(&mut self, log: &Value) {
        let Some(map) = self.object(log, "$", &LOG) else { return };
        if map.get("version") != Some(&Value::String("2.1.0".into())) {
            self.errors.push("$.version must be \"2.1.0\"".into());
        }
        if let Some(schema) = self.string(map.get("$schema"), "$.$schema")
            && !schema.starts_with("https://")
        {
            self.errors.push(format!("$.$schema {schema:?} is not an absolute URI"));
        }
        let runs = self.array(map.get("runs"), "$.runs");
        for (r, run) in runs.iter().enumerate() {
            let at = format!("$.runs[{r}]");
            let Some(run) = self.object(run, &at, &RUN) else {
                continue;
            };
            if let Some(kind) = self.string(run.get("columnKind"), &format!("{at}.columnKind"))
                && !["utf16CodeUnits", "unicodeCodePoints"].contains(&kind.as_str())
            {
                self.errors.push(format!("{at}.columnKind {kind:?}"));
            }
            let mut rule_ids = Vec::new();
            if let Some(tool) = run.get("tool")
                && let Some(tool) = self.object(tool, &format!("{at}.tool"), &TOOL)
                && let Some(driver) = tool.get("driver")
            {
                let dat = format!("{at}.tool.driver");
                if let Some(driver) = self.object(driver, &dat, &TOOL_COMPONENT) {
                    self.string(driver.get("name"), &format!("{dat}.name"));
                    self.string(driver.get("version"), &format!("{dat}.version"));
                    for (i, rule) in self
                        .array(driver.get("rules"), &format!("{dat}.rules"))
                        .iter()
                        .enumerate()
                    {
                        let rat = format!("{dat}.rules[{i}]");
                        let Some(rule) = self.object(rule, &rat, &REPORTING_DESCRIPTOR) else {
                            continue;
                        };
                        rule_ids.push(self.string(rule.get("id"), &format!("{rat}.id")).unwrap_or_default());
                        for key in ["shortDescription", "fullDescription", "help"] {
                            if let Some(text) = rule.get(key) {
                                self.message(text, &format!("{rat}.{key}"), &MULTIFORMAT_MESSAGE);
                            }
                        }
                        if let Some(config) = rule.get("defaultConfiguration") {
                            let cat = format!("{rat}.defaultConfiguration");
                            if let Some(config) = self.object(config, &cat, &REPORTING_CONFIGURATION) {
                                self.level(config.get("level"), &format!("{cat}.level"));
                            }
                        }
                    }
                }
            }
            let unique: BTreeSet<&String> = rule_ids.iter().collect();
            if unique.len() != rule_ids.len() {
                self.errors.push(format!("{at}: rule ids are not unique: {rule_ids:?}"));
            }
            for (i, invocation) in self
                .array(run.get("invocations"), &format!("{at}.invocations"))
                .iter()
                .enumerate()
            {
                let iat = format!("{at}.invocations[{i}]");
                if let Some(invocation) = self.object(invocation, &iat, &INVOCATION)
                    && !invocation.get("executionSuccessful").is_some_and(Value::is_boolean)
                {
                    self.errors.push(format!("{iat}.executionSuccessful must be a boolean"));
                }
            }
            for (i, result) in self
                .array(run.get("results"), &format!("{at}.results"))
                .iter()
                .enumerate()
            {
                let rat = format!("{at}.results[{i}]");
                let Some(result) = self.object(result, &rat, &RESULT) else {
                    continue;
                };
                self.level(result.get("level"), &format!("{rat}.level"));
                if let Some(message) = result.get("message") {
                    self.message(message, &format!("{rat}.message"), &MESSAGE);
                }
                self.integer_at_least(result.get("ruleIndex"), &format!("{rat}.ruleIndex"), -1);
                let id = self.string(result.get("ruleId"), &format!("{rat}.ruleId"));
                if let (Some(id), Some(index)) = (id, result.get("ruleIndex").and_then(Value::as_u64))
                    && rule_ids.get(index as usize) != Some(&id)
                {
                    self.errors.push(format!("{rat}: ruleIndex {index} is not rule {id:?}"));
                }
                for (l, location) in self
                    .array(result.get("locations"), &format!("{rat}.locations"))
                    .iter()
                    .enumerate()
                {
                    self.location(location, &format!("{rat}.locations[{l}]"));
                }
            }
        }
    }
}

fn check(log: &Value) -> Vec<String> {
    let mut checker = Checker { errors: Vec::new() };
    checker.log(log);
    checker.errors
}

#[test]
fn sarif_output_follows_the_schema() {
    for args in [
        &["lint", "tests/lint/corpus/rules.yaml", "-o", "sarif"][..],
        &["lint", "tests/lint/corpus/broken", "-o", "sarif"],
        &["lint", "examples", "-o", "sarif"],
        &["lint", "--strict", "tests/lint/corpus/warnings.yaml", "-o", "sarif"],
    ] {
        let run = reloader(args, None);
        let log: Value = serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{args:?}: {e}"));
        let errors = check(&log);
        assert!(errors.is_empty(), "{args:?}:\n{}", errors.join("\n"));
        let results = log["runs"][0]["results"].as_array().unwrap();
        for r in results {
            assert!(
                r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"].is_string(),
                "code scanning needs a file for every result: {r}"
            );
        }
    }
    let stdin = reloader(&["lint", "-", "-o", "sarif"], Some("list.json"));
    let log: Value = serde_json::from_str(&stdin.stdout).unwrap();
    assert!(check(&log).is_empty(), "{:?}", check(&log));
    assert_eq!(
        log["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
        "%3Cstdin%3E"
    );
}

#[test]
fn the_checker_catches_what_the_schema_forbids() {
    let good: Value =
        serde_json::from_str(&reloader(&["lint", "tests/lint/corpus/rules.yaml", "-o", "sarif"], None).stdout).unwrap();
    assert!(check(&good).is_empty());
    let broken = |edit: &dyn Fn(&mut Value)| {
        let mut log = good.clone();
        edit(&mut log);
        check(&log)
    };
    assert!(!broken(&|l| l["version"] = "2.0.0".into()).is_empty());
    assert!(!broken(&|l| l["runs"][0]["results"][0]["level"] = "fatal".into()).is_empty());
    assert!(!broken(&|l| l["runs"][0]["results"][0]["extra"] = 1.into()).is_empty());
    assert!(!broken(&|l| l["runs"][0]["results"][0]["ruleIndex"] = 5.into()).is_empty());
    assert!(
        !broken(&|l| l["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["region"]["startLine"] = 0.into())
            .is_empty()
    );
    assert!(
        !broken(
            &|l| l["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] =
                "a b.yaml".into()
        )
        .is_empty()
    );
    assert!(!broken(&|l| l["runs"][0]["tool"]["driver"].as_object_mut().unwrap().clear()).is_empty());
    assert!(!broken(&|l| l["runs"][0]["results"][0]["message"] = serde_json::json!({})).is_empty());
}
