//! The address policy of `server.outbound`, as pure functions of an address or a host name.
//!
//! Every check classifies the address a packet would really go to: an IPv6 address that carries
//! an IPv4 one (IPv4-mapped `::ffff:a.b.c.d`, IPv4-compatible `::a.b.c.d`, NAT64 `64:ff9b::/96`,
//! 6to4 `2002::/16`) is judged by the IPv4 address inside. Encoded IPv4 forms (decimal
//! `2852039166`, hex `0xA9FEA9FE`, octal `0251.0376.0251.0376`, short `169.254.43518`) never
//! reach this module as text: the URL parser turns them into the address they denote, and the
//! resolver hands over addresses, not text.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::Blocked;

/// Host names of cloud metadata endpoints, refused by name so that neither a resolver that
/// knows them nor a proxy that resolves them for us can reach one.
const METADATA_NAMES: &[&str] = &[
    "metadata.google.internal",
    "metadata.goog",
    "metadata",
    "instance-data",
    "instance-data.ec2.internal",
    "metadata.tencentyun.com",
];

/// Cloud metadata and credential endpoints outside link-local space, or inside it but worth
/// naming: a request there can hand out the machine's cloud credentials.
const METADATA_V4: &[Ipv4Addr] = &[
    // AWS, GCP, Azure, OpenStack, Oracle, DigitalOcean and most others.
    Ipv4Addr::new(169, 254, 169, 254),
    // AWS ECS task credentials, AWS EKS Pod Identity.
    Ipv4Addr::new(169, 254, 170, 2),
    Ipv4Addr::new(169, 254, 170, 23),
    // Alibaba Cloud (inside 100.64.0.0/10, which is otherwise a private range).
    Ipv4Addr::new(100, 100, 100, 200),
    // Azure WireServer (a public address that only means something inside Azure).
    Ipv4Addr::new(168, 63, 129, 16),
];

/// AWS's IPv6 metadata and EKS Pod Identity endpoints (inside fc00::/7, otherwise private).
const METADATA_V6: &[Ipv6Addr] = &[
    Ipv6Addr::new(0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0254),
    Ipv6Addr::new(0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0023),
];

/// Which addresses remote MCP servers and model providers may be reached at
/// (`server.outbound`). Cheap to clone; compared by value so a reload can tell it changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    allow_private: bool,
    allow_loopback: bool,
    allow: Vec<Cidr>,
    deny: Vec<Cidr>,
}

/// The default: link-local, metadata and non-unicast addresses refused; loopback and private
/// networks allowed, since self-hosted models and servers legitimately live there.
impl Default for Policy {
    fn default() -> Self {
        Policy::new(true, true, Vec::new(), Vec::new())
    }
}

impl Policy {
    /// A policy from its settings: whether private networks (10/8, 172.16/12, 192.168/16,
    /// 100.64/10, fc00::/7) and loopback (127/8, ::1, and 0.0.0.0/8 and ::, which reach this
    /// machine) are allowed, ranges allowed whatever their kind, and ranges always refused.
    pub fn new(
        allow_private: bool,
        allow_loopback: bool,
        allow: Vec<Cidr>,
        deny: Vec<Cidr>,
    ) -> Self {
        Policy {
            allow_private,
            allow_loopback,
            allow,
            deny,
        }
    }

    /// Whether `address` may be connected to; otherwise the rule that refuses it. `deny` wins
    /// over `allow`, which wins over the kind of address.
    ///
    /// # Errors
    /// The [`Refusal`]: the address, the IPv4 address it carries if any, and the rule.
    pub fn check_ip(&self, address: IpAddr) -> Result<(), Refusal> {
        let embedded = match address {
            IpAddr::V6(v6) => embedded_v4(v6),
            IpAddr::V4(_) => None,
        };
        let effective = embedded.map_or(address, |e| IpAddr::V4(e.address));
        let covers = |range: &&Cidr| range.contains(address) || range.contains(effective);
        let refuse = |rule| {
            Err(Refusal {
                address,
                embedded,
                rule,
            })
        };
        if let Some(range) = self.deny.iter().find(covers) {
            return refuse(Rule::Denied(*range));
        }
        if self.allow.iter().any(|range| covers(&range)) {
            return Ok(());
        }
        let rule = match classify(effective) {
            Class::Public => None,
            Class::Metadata => Some(Rule::Metadata),
            Class::LinkLocal(range) => Some(Rule::LinkLocal(range)),
            Class::NotUnicast(range) => Some(Rule::NotUnicast(range)),
            Class::Loopback(range) => (!self.allow_loopback).then_some(Rule::Loopback(range)),
            Class::Private(range) => (!self.allow_private).then_some(Rule::Private(range)),
        };
        match rule {
            Some(rule) => refuse(rule),
            None => Ok(()),
        }
    }

    /// Whether the host name `host` may be resolved at all: cloud metadata names are refused
    /// by name. A name that is an address in text is checked as that address.
    ///
    /// # Errors
    /// [`Blocked::Name`] for a metadata name, [`Blocked::Address`] for a refused address.
    pub fn check_name(&self, host: &str) -> Result<(), Blocked> {
        let name = host.trim_end_matches('.').to_ascii_lowercase();
        if let Ok(address) = name.trim_matches(['[', ']']).parse::<IpAddr>() {
            return self.check_ip(address).map_err(Blocked::Address);
        }
        if METADATA_NAMES.contains(&name.as_str()) {
            return Err(Blocked::Name {
                host: name,
                rule: Rule::Metadata,
            });
        }
        Ok(())
    }

    /// What can be known of `url` before resolving it: its host, if a literal address, and
    /// whether its name is refused by itself. Other names are checked when they are resolved.
    ///
    /// # Errors
    /// As [`Policy::check_ip`] and [`Policy::check_name`].
    pub fn check_url(&self, url: &url::Url) -> Result<(), Blocked> {
        match url.host() {
            Some(url::Host::Ipv4(ip)) => self.check_ip(IpAddr::V4(ip)).map_err(Blocked::Address),
            Some(url::Host::Ipv6(ip)) => self.check_ip(IpAddr::V6(ip)).map_err(Blocked::Address),
            Some(url::Host::Domain(name)) => self.check_name(name),
            None => Ok(()),
        }
    }

    /// Split the addresses a name resolved to into the allowed ones (in their order) and the
    /// refused ones (each once, with its rule).
    pub(super) fn split(
        &self,
        addresses: impl IntoIterator<Item = IpAddr>,
    ) -> (Vec<IpAddr>, Vec<Refusal>) {
        let mut allowed = Vec::new();
        let mut refused: Vec<Refusal> = Vec::new();
        for address in addresses {
            match self.check_ip(address) {
                Ok(()) if !allowed.contains(&address) => allowed.push(address),
                Ok(()) => {}
                Err(refusal) if !refused.iter().any(|r| r.address == address) => {
                    refused.push(refusal);
                }
                Err(_) => {}
            }
        }
        (allowed, refused)
    }
}

/// An address the policy refused, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The address as connected to (or as written).
    pub address: IpAddr,
    /// The IPv4 address an IPv6 one carries, which is what was judged.
    pub embedded: Option<Embedded>,
    /// The rule that refused it.
    pub rule: Rule,
}

impl Refusal {
    /// The address, with the IPv4 one it carries: `::ffff:169.254.169.254 (IPv4-mapped
    /// 169.254.169.254)`.
    pub fn shown(&self) -> String {
        match self.embedded {
            Some(embedded) => format!("{} ({} {})", self.address, embedded.kind, embedded.address),
            None => self.address.to_string(),
        }
    }
}

/// `169.254.169.254 (a cloud metadata endpoint)`.
impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.shown(), self.rule)
    }
}

/// An IPv4 address inside an IPv6 one, and how it is carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Embedded {
    /// `IPv4-mapped`, `IPv4-compatible`, `NAT64` or `6to4`.
    pub kind: &'static str,
    /// The IPv4 address.
    pub address: Ipv4Addr,
}

/// Why an address is refused; shown to users, so each names the range and the setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// Listed in `server.outbound.deny`.
    Denied(Cidr),
    /// A cloud metadata endpoint (by address or by name): refused unless listed in `allow`.
    Metadata,
    /// Link-local (169.254.0.0/16, fe80::/10): refused unless listed in `allow`.
    LinkLocal(&'static str),
    /// Multicast or broadcast: nothing to connect to over TCP.
    NotUnicast(&'static str),
    /// Loopback, with `allow_loopback: false`.
    Loopback(&'static str),
    /// A private network, with `allow_private: false`.
    Private(&'static str),
}

impl Rule {
    /// What to change to reach such an address anyway, for config messages.
    pub fn remedy(&self) -> &'static str {
        match self {
            Rule::Denied(_) => "remove it from server.outbound.deny to reach it",
            Rule::Metadata | Rule::LinkLocal(_) | Rule::NotUnicast(_) => {
                "list the address in server.outbound.allow to reach it anyway"
            }
            Rule::Loopback(_) => {
                "set server.outbound.allow_loopback: true, or list the address in server.outbound.allow"
            }
            Rule::Private(_) => {
                "set server.outbound.allow_private: true, or list the address in server.outbound.allow"
            }
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rule::Denied(range) => write!(f, "listed in deny: {range}"),
            Rule::Metadata => f.write_str("a cloud metadata endpoint"),
            Rule::LinkLocal(range) => write!(f, "link-local, in {range}"),
            Rule::NotUnicast(range) => write!(f, "not a unicast address, in {range}"),
            Rule::Loopback(range) => {
                write!(f, "loopback, in {range}, and allow_loopback is false")
            }
            Rule::Private(range) => {
                write!(
                    f,
                    "a private network, in {range}, and allow_private is false"
                )
            }
        }
    }
}

/// What kind of address one is, with the range it is in (as shown to users).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Public,
    Metadata,
    LinkLocal(&'static str),
    NotUnicast(&'static str),
    Loopback(&'static str),
    Private(&'static str),
}

fn classify(address: IpAddr) -> Class {
    match address {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn classify_v4(address: Ipv4Addr) -> Class {
    if METADATA_V4.contains(&address) {
        return Class::Metadata;
    }
    let [a, b, ..] = address.octets();
    match (a, b) {
        // Connecting to 0.0.0.0 (and on some systems any of 0/8) reaches this machine.
        (0, _) => Class::Loopback("0.0.0.0/8"),
        (127, _) => Class::Loopback("127.0.0.0/8"),
        (169, 254) => Class::LinkLocal("169.254.0.0/16"),
        (10, _) => Class::Private("10.0.0.0/8"),
        (172, 16..=31) => Class::Private("172.16.0.0/12"),
        (192, 168) => Class::Private("192.168.0.0/16"),
        // Shared address space (carrier-grade NAT), private in all but name.
        (100, 64..=127) => Class::Private("100.64.0.0/10"),
        (224..=239, _) => Class::NotUnicast("224.0.0.0/4"),
        _ if address.is_broadcast() => Class::NotUnicast("255.255.255.255/32"),
        _ => Class::Public,
    }
}

fn classify_v6(address: Ipv6Addr) -> Class {
    if METADATA_V6.contains(&address) {
        return Class::Metadata;
    }
    if address.is_loopback() {
        return Class::Loopback("::1/128");
    }
    if address.is_unspecified() {
        return Class::Loopback("::/128");
    }
    let first = address.segments()[0];
    if first & 0xffc0 == 0xfe80 {
        Class::LinkLocal("fe80::/10")
    } else if first & 0xff00 == 0xff00 {
        Class::NotUnicast("ff00::/8")
    } else if first & 0xfe00 == 0xfc00 {
        Class::Private("fc00::/7")
    } else if first & 0xffc0 == 0xfec0 {
        // Deprecated site-local addresses, still routed inside some networks.
        Class::Private("fec0::/10")
    } else {
        Class::Public
    }
}

/// The IPv4 address an IPv6 address carries, when a packet to it really goes to that IPv4
/// address (or to the network it names).
fn embedded_v4(address: Ipv6Addr) -> Option<Embedded> {
    let s = address.segments();
    let v4 = |high: u16, low: u16| {
        let [a, b] = high.to_be_bytes();
        let [c, d] = low.to_be_bytes();
        Ipv4Addr::new(a, b, c, d)
    };
    let kind = if let Some(mapped) = address.to_ipv4_mapped() {
        return Some(Embedded {
            kind: "IPv4-mapped",
            address: mapped,
        });
    } else if s[..6] == [0; 6] && !address.is_unspecified() && !address.is_loopback() {
        "IPv4-compatible"
    } else if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] || s[..3] == [0x64, 0xff9b, 1] {
        "NAT64"
    } else if s[0] == 0x2002 {
        return Some(Embedded {
            kind: "6to4",
            address: v4(s[1], s[2]),
        });
    } else {
        return None;
    };
    Some(Embedded {
        kind,
        address: v4(s[6], s[7]),
    })
}

/// An IP range, `ADDRESS/PREFIX`, or one address (`10.0.0.5` = `10.0.0.5/32`), as listed in
/// `server.outbound.allow` and `deny`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

/// Why a range in `allow` / `deny` does not parse; the config names the entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CidrError {
    /// The address part is not a plain IPv4 (dotted, four decimal parts) or IPv6 address.
    #[error("not an IP address or range such as 10.0.0.0/8, 192.0.2.7 or fd00::/8")]
    Syntax,
    /// The prefix length is not a number of bits the address has.
    #[error("the prefix length must be a number from 0 to {bits}")]
    Prefix {
        /// 32 or 128.
        bits: u8,
    },
    /// Bits are set after the prefix, which usually means a typo in the prefix.
    #[error("has bits set after the /{prefix} prefix; did you mean {suggestion}?")]
    HostBits {
        /// The prefix as written.
        prefix: u8,
        /// The range with those bits cleared.
        suggestion: Cidr,
    },
}

impl Cidr {
    /// Parse `text`. Addresses are read strictly (no octal, hex or short forms, no zone), so
    /// a range means what it says.
    ///
    /// # Errors
    /// See [`CidrError`].
    pub fn parse(text: &str) -> Result<Cidr, CidrError> {
        let (address, prefix) = match text.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text, None),
        };
        let network: IpAddr = address.parse().map_err(|_| CidrError::Syntax)?;
        let bits = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => bits,
            Some(p) if !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()) => {
                match p.parse::<u8>() {
                    Ok(n) if n <= bits => n,
                    _ => return Err(CidrError::Prefix { bits }),
                }
            }
            Some(_) => return Err(CidrError::Prefix { bits }),
        };
        let cidr = Cidr { network, prefix };
        let masked = cidr.masked(network);
        if masked != network {
            return Err(CidrError::HostBits {
                prefix,
                suggestion: Cidr {
                    network: masked,
                    prefix,
                },
            });
        }
        Ok(cidr)
    }

    /// Whether `address` is in this range (an IPv4 range never contains an IPv6 address; the
    /// policy checks the IPv4 address an IPv6 one carries separately).
    pub fn contains(&self, address: IpAddr) -> bool {
        match (self.network, address) {
            (IpAddr::V4(_), IpAddr::V4(_)) | (IpAddr::V6(_), IpAddr::V6(_)) => {
                self.masked(address) == self.network
            }
            _ => false,
        }
    }

    /// `address` with the bits after this range's prefix cleared.
    fn masked(&self, address: IpAddr) -> IpAddr {
        match address {
            IpAddr::V4(v4) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                IpAddr::V4(Ipv4Addr::from(u32::from(v4) & mask))
            }
            IpAddr::V6(v6) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                IpAddr::V6(Ipv6Addr::from(u128::from(v6) & mask))
            }
        }
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("test address")
    }

    fn cidrs(list: &[&str]) -> Vec<Cidr> {
        list.iter()
            .map(|c| Cidr::parse(c).expect("test range"))
            .collect()
    }

    /// The rule that refuses the host of `url` under `policy`, as text; `None` when allowed.
    fn verdict(policy: &Policy, url: &str) -> Option<String> {
        let url = url::Url::parse(url).expect("test url");
        policy.check_url(&url).err().map(|b| b.to_string())
    }

    #[test]
    fn the_url_parser_turns_encoded_ipv4_forms_into_the_address() {
        // What the classifier is given: the url crate (WHATWG host parsing, for http and
        // https) normalizes every one of these to 169.254.169.254.
        for form in [
            "http://169.254.169.254/",
            "http://2852039166/",
            "http://0xA9FEA9FE/",
            "http://0xa9.0xfe.0xa9.0xfe/",
            "http://0251.0376.0251.0376/",
            "http://0251.254.169.254/",
            "http://169.254.43518/",
            "http://169.16689662/",
            "http://169.254.169.254./",
            "https://%31%36%39.254.169.254/",
        ] {
            let url = url::Url::parse(form).expect(form);
            assert_eq!(
                url.host(),
                Some(url::Host::Ipv4(Ipv4Addr::new(169, 254, 169, 254))),
                "{form}"
            );
        }
        for (form, expected) in [
            ("http://[::ffff:169.254.169.254]/", "::ffff:169.254.169.254"),
            ("http://[::ffff:a9fe:a9fe]/", "::ffff:169.254.169.254"),
            (
                "http://[0:0:0:0:0:ffff:a9fe:a9fe]/",
                "::ffff:169.254.169.254",
            ),
            ("http://[::169.254.169.254]/", "::169.254.169.254"),
            ("http://[64:ff9b::a9fe:a9fe]/", "64:ff9b::a9fe:a9fe"),
        ] {
            let url = url::Url::parse(form).expect(form);
            let Some(url::Host::Ipv6(v6)) = url.host() else {
                panic!("{form} is not an IPv6 host: {:?}", url.host());
            };
            assert_eq!(
                v6,
                expected.parse::<Ipv6Addr>().expect("expected"),
                "{form}"
            );
        }
    }

    #[test]
    fn every_encoding_of_the_metadata_address_is_refused_by_default() {
        let policy = Policy::default();
        for form in [
            "http://169.254.169.254/latest/meta-data/",
            "http://2852039166/",
            "http://0xA9FEA9FE/",
            "http://0251.0376.0251.0376/",
            "http://169.254.43518/",
            "http://169.16689662/",
            "http://[::ffff:169.254.169.254]/",
            "http://[::ffff:a9fe:a9fe]/",
            "http://[::169.254.169.254]/",
            "http://[64:ff9b::a9fe:a9fe]/",
            "http://[64:ff9b:1::a9fe:a9fe]/",
            "http://[2002:a9fe:a9fe::1]/",
        ] {
            let shown = verdict(&policy, form).unwrap_or_else(|| panic!("{form} was allowed"));
            assert!(
                shown.contains("a cloud metadata endpoint"),
                "{form}: {shown}"
            );
            assert!(shown.contains("169.254.169.254"), "{form}: {shown}");
        }
        assert_eq!(
            verdict(&policy, "http://[::ffff:a9fe:a9fe]/").as_deref(),
            Some(
                "address ::ffff:169.254.169.254 (IPv4-mapped 169.254.169.254) is refused by \
                 server.outbound (a cloud metadata endpoint)"
            )
        );
    }

    #[test]
    fn metadata_names_and_addresses_of_each_cloud_are_refused() {
        let policy = Policy::default();
        for form in [
            "http://metadata.google.internal/computeMetadata/v1/",
            "http://METADATA.google.internal./",
            "http://metadata.goog/",
            "http://metadata/",
            "http://instance-data/",
            "http://instance-data.ec2.internal/",
            "http://[fd00:ec2::254]/",
            "http://[fd00:ec2::23]/",
            "http://169.254.170.2/v2/credentials",
            "http://100.100.100.200/latest/meta-data/",
            "http://168.63.129.16/",
        ] {
            let shown = verdict(&policy, form).unwrap_or_else(|| panic!("{form} was allowed"));
            assert!(
                shown.contains("a cloud metadata endpoint"),
                "{form}: {shown}"
            );
        }
        // Names that merely contain the word are names like any other, checked when resolved.
        assert_eq!(verdict(&policy, "http://metadata.example.com/"), None);
    }

    #[test]
    fn link_local_and_non_unicast_are_refused_by_default() {
        let policy = Policy::default();
        for (form, range) in [
            ("http://169.254.1.1/", "169.254.0.0/16"),
            ("http://[fe80::1]/", "fe80::/10"),
            ("http://[febf::1]/", "fe80::/10"),
            ("http://[::ffff:169.254.0.1]/", "169.254.0.0/16"),
            ("http://224.0.0.1/", "224.0.0.0/4"),
            ("http://255.255.255.255/", "255.255.255.255/32"),
            ("http://[ff02::1]/", "ff00::/8"),
        ] {
            let shown = verdict(&policy, form).unwrap_or_else(|| panic!("{form} was allowed"));
            assert!(shown.contains(range), "{form}: {shown}");
        }
    }

    #[test]
    fn loopback_and_private_are_allowed_by_default_and_refusable() {
        let default = Policy::default();
        let strict = Policy::new(false, false, Vec::new(), Vec::new());
        for (form, rule) in [
            ("http://127.0.0.1:11434/v1", "loopback, in 127.0.0.0/8"),
            ("http://2130706433/", "loopback, in 127.0.0.0/8"),
            ("http://0x7f.1/", "loopback, in 127.0.0.0/8"),
            ("http://0/", "loopback, in 0.0.0.0/8"),
            ("http://[::1]/", "loopback, in ::1/128"),
            ("http://[::]/", "loopback, in ::/128"),
            ("http://[::ffff:127.0.0.1]/", "loopback, in 127.0.0.0/8"),
            ("http://10.1.2.3/", "a private network, in 10.0.0.0/8"),
            ("http://012.1.2.3/", "a private network, in 10.0.0.0/8"),
            ("http://172.16.0.1/", "a private network, in 172.16.0.0/12"),
            (
                "http://172.31.255.255/",
                "a private network, in 172.16.0.0/12",
            ),
            (
                "http://192.168.1.1/",
                "a private network, in 192.168.0.0/16",
            ),
            ("http://100.64.0.1/", "a private network, in 100.64.0.0/10"),
            ("http://[fd12:3456::1]/", "a private network, in fc00::/7"),
            (
                "http://[::ffff:10.0.0.1]/",
                "a private network, in 10.0.0.0/8",
            ),
            (
                "http://[64:ff9b::a00:1]/",
                "a private network, in 10.0.0.0/8",
            ),
        ] {
            assert_eq!(verdict(&default, form), None, "{form}");
            let shown = verdict(&strict, form).unwrap_or_else(|| panic!("{form} was allowed"));
            assert!(shown.contains(rule), "{form}: {shown}");
        }
        // Neighbours of the ranges are public.
        for form in [
            "http://172.15.255.255/",
            "http://172.32.0.1/",
            "http://100.63.255.255/",
            "http://100.128.0.1/",
            "http://169.253.255.255/",
            "http://[2001:db8::1]/",
            "http://[::ffff:93.184.216.34]/",
            "http://93.184.216.34/",
        ] {
            assert_eq!(verdict(&strict, form), None, "{form}");
        }
    }

    #[test]
    fn deny_wins_over_allow_which_wins_over_the_kind() {
        let policy = Policy::new(
            false,
            false,
            cidrs(&["169.254.10.0/24", "10.0.0.0/8", "::1"]),
            cidrs(&["169.254.10.9", "10.9.0.0/16", "203.0.113.0/24"]),
        );
        assert_eq!(policy.check_ip(ip("169.254.10.1")), Ok(()));
        assert_eq!(policy.check_ip(ip("10.1.2.3")), Ok(()));
        assert_eq!(policy.check_ip(ip("::1")), Ok(()));
        assert_eq!(policy.check_ip(ip("::ffff:10.1.2.3")), Ok(()));
        for (address, rule) in [
            ("169.254.10.9", "listed in deny: 169.254.10.9/32"),
            ("10.9.1.1", "listed in deny: 10.9.0.0/16"),
            ("::ffff:10.9.1.1", "listed in deny: 10.9.0.0/16"),
            ("203.0.113.7", "listed in deny: 203.0.113.0/24"),
            ("127.0.0.1", "allow_loopback is false"),
            ("192.168.0.1", "allow_private is false"),
            ("169.254.169.254", "a cloud metadata endpoint"),
        ] {
            let refusal = policy.check_ip(ip(address)).expect_err(address);
            assert!(refusal.to_string().contains(rule), "{address}: {refusal}");
        }
        // An explicit allow reaches even the metadata address.
        let allowed = Policy::new(true, true, cidrs(&["169.254.169.254"]), Vec::new());
        assert_eq!(allowed.check_ip(ip("169.254.169.254")), Ok(()));
        assert_eq!(allowed.check_ip(ip("::ffff:169.254.169.254")), Ok(()));
    }

    #[test]
    fn resolved_addresses_are_split_into_allowed_and_refused() {
        let policy = Policy::new(true, false, Vec::new(), Vec::new());
        let (allowed, refused) = policy.split([
            ip("127.0.0.1"),
            ip("93.184.216.34"),
            ip("::1"),
            ip("169.254.169.254"),
            ip("93.184.216.34"),
            ip("127.0.0.1"),
        ]);
        assert_eq!(allowed, [ip("93.184.216.34")]);
        let refused: Vec<String> = refused.iter().map(ToString::to_string).collect();
        assert_eq!(
            refused,
            [
                "127.0.0.1 (loopback, in 127.0.0.0/8, and allow_loopback is false)",
                "::1 (loopback, in ::1/128, and allow_loopback is false)",
                "169.254.169.254 (a cloud metadata endpoint)",
            ]
        );
    }

    #[test]
    fn names_that_are_addresses_in_text_are_checked_as_addresses() {
        let policy = Policy::default();
        assert!(matches!(
            policy.check_name("169.254.169.254"),
            Err(Blocked::Address(_))
        ));
        assert!(matches!(
            policy.check_name("[fe80::1]"),
            Err(Blocked::Address(_))
        ));
        assert_eq!(policy.check_name("example.com"), Ok(()));
    }

    #[test]
    fn ranges_parse_strictly_and_say_what_is_wrong() {
        assert_eq!(Cidr::parse("10.0.0.0/8").unwrap().to_string(), "10.0.0.0/8");
        assert_eq!(Cidr::parse("10.0.0.5").unwrap().to_string(), "10.0.0.5/32");
        assert_eq!(Cidr::parse("fd00::/8").unwrap().to_string(), "fd00::/8");
        assert_eq!(Cidr::parse("::1").unwrap().to_string(), "::1/128");
        assert_eq!(Cidr::parse("0.0.0.0/0").unwrap().to_string(), "0.0.0.0/0");
        assert!(Cidr::parse("0.0.0.0/0").unwrap().contains(ip("8.8.8.8")));
        assert!(!Cidr::parse("0.0.0.0/0").unwrap().contains(ip("::1")));
        assert!(Cidr::parse("::/0").unwrap().contains(ip("2001:db8::1")));
        for bad in [
            "",
            "10.0.0",
            "0x0a.0.0.0/8",
            "010.0.0.0/8",
            "10.0.0.0/",
            "example.com",
            "fe80::1%eth0",
            "10.0.0.0/8/8",
        ] {
            assert!(Cidr::parse(bad).is_err(), "{bad:?} parsed");
        }
        assert_eq!(
            Cidr::parse("10.0.0.0/33"),
            Err(CidrError::Prefix { bits: 32 })
        );
        assert_eq!(
            Cidr::parse("fd00::/129"),
            Err(CidrError::Prefix { bits: 128 })
        );
        assert_eq!(
            Cidr::parse("10.0.0.0/+8"),
            Err(CidrError::Prefix { bits: 32 })
        );
        assert_eq!(
            Cidr::parse("10.1.2.3/8").unwrap_err().to_string(),
            "has bits set after the /8 prefix; did you mean 10.0.0.0/8?"
        );
        assert_eq!(
            Cidr::parse("fd00::1/8").unwrap_err().to_string(),
            "has bits set after the /8 prefix; did you mean fd00::/8?"
        );
    }

    #[test]
    fn every_rule_has_a_remedy_naming_a_setting() {
        for rule in [
            Rule::Denied(Cidr::parse("10.0.0.0/8").unwrap()),
            Rule::Metadata,
            Rule::LinkLocal("169.254.0.0/16"),
            Rule::NotUnicast("224.0.0.0/4"),
            Rule::Loopback("127.0.0.0/8"),
            Rule::Private("10.0.0.0/8"),
        ] {
            assert!(rule.remedy().contains("server.outbound."), "{rule}");
        }
    }
}
