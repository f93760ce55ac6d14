//! List flags as pflag reads its `StringSlice` flags: repeatable, each occurrence a Go CSV
//! record.

use super::ConfigError;

/// The items of a pflag `StringSlice` flag given `values` (one string per occurrence): each
/// occurrence is one Go CSV record; items are trimmed and empty items dropped.
pub(super) fn list_items(flag: &'static str, values: &[String]) -> Result<Vec<String>, ConfigError> {
    let mut items = Vec::new();
    for value in values {
        let record = csv_record(value).map_err(|reason| ConfigError::List {
            flag,
            reason: format!("{reason} in {value:?}"),
        })?;
        items.extend(record.into_iter().filter(|item| !item.is_empty()));
    }
    Ok(items)
}

/// One record of Go's `encoding/csv` with `,` as separator (what pflag uses for slices), except
/// that fields are trimmed and spaces around a quoted field are allowed.
fn csv_record(value: &str) -> Result<Vec<String>, &'static str> {
    let mut fields = Vec::new();
    let mut rest = value;
    loop {
        let start = rest.trim_start();
        if let Some(quoted) = start.strip_prefix('"') {
            let mut field = String::new();
            let mut chars = quoted.char_indices();
            let tail = loop {
                match chars.next() {
                    None => return Err("unterminated quoted field"),
                    Some((i, '"')) => {
                        if quoted[i + 1..].starts_with('"') {
                            field.push('"');
                            chars.next();
                        } else {
                            break quoted[i + 1..].trim_start();
                        }
                    }
                    Some((_, c)) => field.push(c),
                }
            };
            fields.push(field.trim().to_string());
            if tail.is_empty() {
                return Ok(fields);
            }
            rest = tail.strip_prefix(',').ok_or("text after a closing quote")?;
        } else {
            let (field, next) = match rest.split_once(',') {
                Some((field, next)) => (field, Some(next)),
                None => (rest, None),
            };
            if field.contains('"') {
                return Err("bare \" in a non-quoted field");
            }
            fields.push(field.trim().to_string());
            match next {
                Some(next) => rest = next,
                None => return Ok(fields),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_flags_parse_like_pflag_string_slices() {
        let items = |v: &[&str]| {
            let v: Vec<String> = v.iter().map(|s| s.to_string()).collect();
            list_items("--x", &v)
        };
        assert_eq!(items(&["a,b", "c"]).unwrap(), ["a", "b", "c"]);
        assert_eq!(items(&["", " a , ,b "]).unwrap(), ["a", "b"]);
        assert_eq!(items(&["\"a,b\",c"]).unwrap(), ["a,b", "c"]);
        assert_eq!(items(&["\"say \"\"hi\"\"\""]).unwrap(), ["say \"hi\""]);
        for bad in ["a\"b", "\"open", "\"a\"b"] {
            let e = items(&[bad]).unwrap_err();
            assert!(e.to_string().starts_with("--x: "), "{bad:?}: {e}");
        }
    }
}
