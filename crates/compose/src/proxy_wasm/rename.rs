//! A component `pwchain wrap` made, renamed: its log lines carry the name
//! it was wrapped with, so a chain that names a pre-wrapped component by
//! `path =` gives the driver's store the chain's name for it instead.
//!
//! The wrapped component holds the driver's settings in a store pwchain
//! generated ([`crate::link::providers::config_store`]), nested as a component of
//! its own. Renaming reads that store's entries back from its data segment,
//! generates it anew with the new `name`, and puts it where the old one
//! was; nothing else changes, and the store's type stays the same.

use crate::error::{Error, WrapProblem};
use wasmparser::{BinaryReader, Parser, Payload};

/// Section ids of the component binary format.
const CUSTOM_SECTION: u8 = 0;
const COMPONENT_SECTION: u8 = 4;

/// `component` with its driver's `name` setting replaced, or `None` if it
/// holds no such store (it was not made by `pwchain wrap`).
pub fn rename(component: &[u8], name: &str) -> Result<Option<Vec<u8>>, Error> {
    let invalid = |e| Error::wrap(name, WrapProblem::Damaged(e));
    let mut reader = BinaryReader::new(component, 0);
    let mut out = reader.read_bytes(8).map_err(invalid)?.to_vec();
    let mut renamed = false;
    while !reader.eof() {
        let id = reader.read_u8().map_err(invalid)?;
        let len = reader.read_var_u32().map_err(invalid)?;
        let contents = reader.read_bytes(len as usize).map_err(invalid)?;
        let replaced = match (id, renamed) {
            (COMPONENT_SECTION, false) => renamed_store(contents, name)?,
            (CUSTOM_SECTION, _) => renamed_record(contents, name),
            _ => None,
        };
        // Only the store counts as the rename; the record follows it.
        let replaced_store = id == COMPONENT_SECTION && replaced.is_some();
        renamed |= replaced_store;
        let contents = replaced.as_deref().unwrap_or(contents);
        out.push(id);
        leb(&mut out, contents.len() as u32);
        out.extend_from_slice(contents);
    }
    Ok(renamed.then_some(out))
}

/// The store `nested` regenerated with `name`, if it is the driver's store
/// (it holds the plugin's `name` and `callbacks`: as `0.name` and
/// `0.callbacks` for a run of one, or unprefixed, as a component wrapped
/// before drivers took runs has them).
fn renamed_store(nested: &[u8], name: &str) -> Result<Option<Vec<u8>>, Error> {
    let mut version = None;
    let mut entries = None;
    for payload in Parser::new(0).parse_all(nested) {
        let Ok(payload) = payload else {
            return Ok(None);
        };
        match payload {
            Payload::ComponentExportSection(exports) => {
                for export in exports.into_iter().flatten() {
                    if let Some(v) = export.name.name.strip_prefix("wasi:config/store@") {
                        version = Some(v.to_string());
                    }
                }
            }
            Payload::DataSection(data) => {
                for segment in data.into_iter().flatten() {
                    entries = entries.or_else(|| store_entries(segment.data));
                }
            }
            _ => {}
        }
    }
    let (Some(version), Some(mut entries)) = (version, entries) else {
        return Ok(None);
    };
    let has = |key: &str| entries.iter().any(|(k, _)| k == key);
    let prefix = match (
        has("0.name") && has("0.callbacks"),
        has("name") && has("callbacks"),
    ) {
        (true, _) => "0.",
        (false, true) => "",
        (false, false) => return Ok(None),
    };
    for (key, value) in &mut entries {
        if key.strip_prefix(prefix) == Some("name") {
            *value = name.to_string();
        }
    }
    crate::link::providers::config_store(&version, &entries).map(Some)
}

/// The `pwchain:wrapped` record in custom section `contents`, with `name`.
fn renamed_record(contents: &[u8], name: &str) -> Option<Vec<u8>> {
    let mut reader = BinaryReader::new(contents, 0);
    let section = reader.read_string().ok()?;
    if section != crate::inspect::record::WRAPPED_SECTION {
        return None;
    }
    let data = &contents[reader.original_position() as usize..];
    let mut record: crate::inspect::record::WrapRecord = serde_json::from_slice(data).ok()?;
    record.name = name.to_string();
    let mut out = Vec::new();
    leb(&mut out, section.len() as u32);
    out.extend_from_slice(section.as_bytes());
    out.extend(serde_json::to_vec(&record).ok()?);
    Some(out)
}

/// The entries of a generated store's data segment: a 16-byte return area,
/// then per entry the offset and length of its key and of its value, then
/// the strings (see `config_store`).
fn store_entries(data: &[u8]) -> Option<Vec<(String, String)>> {
    let word = |at: usize| -> Option<usize> {
        Some(u32::from_le_bytes(data.get(at..at + 4)?.try_into().ok()?) as usize)
    };
    if data.get(..16)? != [0; 16] {
        return None;
    }
    let first = word(16)?;
    if first < 16 || (first - 16) % 16 != 0 {
        return None;
    }
    let text = |at: usize| -> Option<String> {
        let (start, len) = (word(at)?, word(at + 4)?);
        String::from_utf8(data.get(start..start + len)?.to_vec()).ok()
    };
    (0..(first - 16) / 16)
        .map(|i| Some((text(16 + 16 * i)?, text(24 + 16 * i)?)))
        .collect()
}

fn leb(out: &mut Vec<u8>, mut value: u32) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_store_reads_back_what_it_was_made_with() {
        let entries = vec![
            ("name".to_string(), "old".to_string()),
            ("callbacks".to_string(), "proxy_on_log".to_string()),
            ("configuration".to_string(), String::new()),
        ];
        let store = crate::link::providers::config_store("0.2.0-rc.1", &entries).unwrap();
        let renamed = renamed_store(&store, "new")
            .unwrap()
            .expect("the driver's store");
        let again = renamed_store(&renamed, "newer")
            .unwrap()
            .expect("still a store");
        assert_ne!(renamed, again);
        let plain = crate::link::providers::config_store("0.2.0-rc.1", &entries[1..]).unwrap();
        assert!(
            renamed_store(&plain, "x").unwrap().is_none(),
            "no `name`: not the driver's"
        );
    }
}
