//! Exposed tool names: `<server>__<tool>` fitted to what LLM providers accept.
//!
//! OpenAI-compatible APIs accept `^[a-zA-Z0-9_-]{1,64}$`; MCP allows longer names and dots. This
//! file owns the mapping and the stable hash that shortens long names. It does not detect
//! collisions (that needs every server at once, see `catalog`) and the mapping is one-way:
//! routing uses the original names stored beside the exposed one, never a parse of it.

/// Longest exposed name any provider accepts.
pub const MAX_EXPOSED_NAME_LEN: usize = 64;

/// Length of the readable prefix kept when a name is shortened: 55 + `_` + 8 hex digits = 64.
const SHORTENED_PREFIX_LEN: usize = MAX_EXPOSED_NAME_LEN - 1 - HASH_HEX_LEN;
const HASH_HEX_LEN: usize = 8;
const SEPARATOR: &str = "__";

/// The name a model sees for `tool` of `server`: `<server>__<tool>`, every character outside
/// `[A-Za-z0-9_-]` replaced by `_`, and names over 64 characters cut to 55 plus `_` and eight hex
/// digits of a stable hash of the original pair.
///
/// The result depends only on the two names, so it survives restarts and config reordering, and
/// it always matches `^[a-zA-Z0-9_-]{1,64}$`. Different pairs can map to the same name (`a.b`
/// and `a_b`); the catalog detects that, this function does not.
pub fn exposed_name(server: &str, tool: &str) -> String {
    let mapped: String = server
        .chars()
        .chain(SEPARATOR.chars())
        .chain(tool.chars())
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    // Every character is ASCII now, so byte length == character count and slicing is safe.
    if mapped.len() <= MAX_EXPOSED_NAME_LEN {
        return mapped;
    }
    let hash = fold_to_u32(stable_hash(server, tool));
    format!("{}_{hash:08x}", &mapped[..SHORTENED_PREFIX_LEN])
}

/// FNV-1a 64 over an unambiguous encoding of the pair (server length, server, tool).
///
/// Written out rather than using `DefaultHasher`, whose output may change between Rust releases
/// and would then rename tools on upgrade.
fn stable_hash(server: &str, tool: &str) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let len = u64::try_from(server.len())
        .unwrap_or(u64::MAX)
        .to_le_bytes();
    len.iter()
        .chain(server.as_bytes())
        .chain(tool.as_bytes())
        .fold(OFFSET, |hash, &byte| {
            (hash ^ u64::from(byte)).wrapping_mul(PRIME)
        })
}

/// Folds both halves into the 32 bits that fit in eight hex digits, so no bit is thrown away.
fn fold_to_u32(hash: u64) -> u32 {
    // Truncation is the point here: the high half is already mixed into the low half.
    ((hash >> 32) ^ hash) as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[track_caller]
    fn check(server: &str, tool: &str, expected: &str) {
        assert_eq!(exposed_name(server, tool), expected);
    }

    fn is_valid(name: &str) -> bool {
        (1..=MAX_EXPOSED_NAME_LEN).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    }

    #[test]
    fn short_names_are_joined_and_mapped() {
        check("everything", "get-sum", "everything__get-sum");
        check("my.server", "read file", "my_server__read_file");
        check("fs", "dir/list", "fs__dir_list");
        check("fs", "ünïcode", "fs___n_code");
        check("s", "🙂", "s___");
    }

    #[test]
    fn exactly_64_is_kept_whole() {
        let tool = "t".repeat(64 - "srv__".len());
        check("srv", &tool, &format!("srv__{tool}"));
    }

    #[test]
    fn long_names_are_cut_with_a_hash_suffix() {
        let tool = format!("ns_{}", "x".repeat(80));
        let name = exposed_name("my.server", &tool);
        assert_eq!(name.len(), 64);
        assert!(name.starts_with("my_server__ns_xxx"));
        assert_eq!(name.as_bytes()[55], b'_');
        assert!(
            name[56..]
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
        // Same readable prefix, different tool: the hash tells them apart.
        let other = exposed_name("my.server", &format!("ns_{}y", "x".repeat(80)));
        assert_eq!(name[..55], other[..55]);
        assert_ne!(name, other);
    }

    #[test]
    fn hash_is_pinned() {
        // Pinned (and cross-checked with an independent FNV-1a implementation) so a refactor
        // cannot silently rename every long tool.
        assert_eq!(stable_hash("", ""), 0xa8c7_f832_281a_39c5);
        check(
            "server",
            &"a".repeat(100),
            "server__aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa_43244b5d",
        );
    }

    #[test]
    fn hash_separates_the_pair() {
        // "ab" + "c" and "a" + "bc" must not hash alike just because the bytes concatenate alike.
        assert_ne!(stable_hash("ab", "c"), stable_hash("a", "bc"));
    }

    proptest! {
        #[test]
        fn always_valid(server in ".{0,80}", tool in ".{0,200}") {
            let name = exposed_name(&server, &tool);
            prop_assert!(is_valid(&name), "{name:?}");
        }

        #[test]
        fn deterministic(server in ".{0,40}", tool in ".{0,120}") {
            prop_assert_eq!(exposed_name(&server, &tool), exposed_name(&server.clone(), &tool.clone()));
        }

        #[test]
        fn short_names_collide_only_through_mapping(
            a in ("[a-c._]{1,4}", "[a-c._-]{1,6}"),
            b in ("[a-c._]{1,4}", "[a-c._-]{1,6}"),
        ) {
            // Below 64 characters the only way two pairs meet is the `.` -> `_` mapping or an
            // ambiguous `__` split; the catalog must then refuse one of them.
            if a != b && exposed_name(&a.0, &a.1) == exposed_name(&b.0, &b.1) {
                let joined = |p: &(String, String)| format!("{}__{}", p.0, p.1).replace('.', "_");
                prop_assert_eq!(joined(&a), joined(&b));
            }
        }
    }
}
