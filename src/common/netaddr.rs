//! This machine's addresses, in the order a server owner wants them offered.
//!
//! The address other machines reach us at (the one on the default route)
//! comes first, then other LAN addresses, then IPv6, and loopback last, since
//! it only serves this machine. Detection reads the system's interface table
//! (netlink on Linux, IP Helper on Windows); it sends nothing on the network.

use std::fmt;
use std::net::IpAddr;

/// One address of this machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalAddress {
    pub ip: IpAddr,
    /// The interface it belongs to ("eth0", "Wi-Fi"); may be empty.
    pub interface: String,
}

impl fmt::Display for LocalAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.ip.is_loopback() {
            write!(f, "{} (this machine only)", self.ip)
        } else if self.interface.is_empty() {
            write!(f, "{}", self.ip)
        } else {
            write!(f, "{} ({})", self.ip, self.interface)
        }
    }
}

/// This machine's addresses, best first. Empty if the system would not say.
pub fn detect() -> Vec<LocalAddress> {
    let all = local_ip_address::list_afinet_netifas()
        .unwrap_or_default()
        .into_iter()
        .map(|(interface, ip)| LocalAddress { ip, interface })
        .collect();
    order(all, local_ip_address::local_ip().ok())
}

/// Sorts addresses best first and drops the ones a server cannot usefully
/// offer (IPv6 link-local needs a scope no one types; duplicates).
pub fn order(mut addrs: Vec<LocalAddress>, preferred: Option<IpAddr>) -> Vec<LocalAddress> {
    addrs.retain(|a| !is_ipv6_link_local(a.ip) && !a.ip.is_unspecified());
    addrs.sort_by_key(|a| (rank(a.ip, preferred), a.ip));
    addrs.dedup_by(|a, b| a.ip == b.ip);
    addrs
}

fn rank(ip: IpAddr, preferred: Option<IpAddr>) -> u8 {
    match ip {
        _ if Some(ip) == preferred => 0,
        IpAddr::V4(v4) if v4.is_private() => 1,
        IpAddr::V4(v4) if !v4.is_loopback() && !v4.is_link_local() => 2,
        IpAddr::V4(v4) if v4.is_link_local() => 3,
        IpAddr::V6(v6) if !v6.is_loopback() => 4,
        IpAddr::V4(_) => 5,
        IpAddr::V6(_) => 6,
    }
}

fn is_ipv6_link_local(ip: IpAddr) -> bool {
    matches!(ip, IpAddr::V6(v6) if (v6.segments()[0] & 0xffc0) == 0xfe80)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(ip: &str, interface: &str) -> LocalAddress {
        LocalAddress {
            ip: ip.parse().unwrap(),
            interface: interface.into(),
        }
    }

    #[test]
    fn the_default_route_address_comes_first_and_loopback_last() {
        let ordered = order(
            vec![
                a("127.0.0.1", "lo"),
                a("::1", "lo"),
                a("fe80::1", "eth0"),
                a("2001:db8::5", "eth0"),
                a("172.17.0.1", "docker0"),
                a("192.168.1.20", "eth0"),
                a("169.254.3.4", "eth1"),
                a("192.168.1.20", "eth0"),
            ],
            Some("192.168.1.20".parse().unwrap()),
        );
        let ips: Vec<String> = ordered.iter().map(|a| a.ip.to_string()).collect();
        assert_eq!(
            ips,
            [
                "192.168.1.20",
                "172.17.0.1",
                "169.254.3.4",
                "2001:db8::5",
                "127.0.0.1",
                "::1"
            ]
        );
    }

    #[test]
    fn labels_say_which_interface_and_what_loopback_means() {
        assert_eq!(a("10.0.0.2", "wlan0").to_string(), "10.0.0.2 (wlan0)");
        assert_eq!(
            a("127.0.0.1", "lo").to_string(),
            "127.0.0.1 (this machine only)"
        );
    }
}
