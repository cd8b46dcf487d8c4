//! Who this node is: its hostname and the address that `/` shows, so that round-robin
//! through a load balancer is visible.

use std::fs;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::ptr;

/// The hostname of this UTS namespace (the container's name in Docker).
pub fn hostname() -> Result<String, String> {
    const SOURCE: &str = "/proc/sys/kernel/hostname";
    fs::read_to_string(SOURCE)
        .map(|name| name.trim().to_owned())
        .ok()
        .filter(|name| !name.is_empty())
        .ok_or_else(|| format!("cannot read the hostname from {SOURCE}; pass --node NAME"))
}

/// The address requests reach this node on: the listening address when it is a specific
/// one, else the first address of an interface that is up and not loopback (IPv4 first),
/// else loopback. (tiny_http does not say which local address a request came in on.)
pub fn address(listening: SocketAddr) -> IpAddr {
    let ip = listening.ip();
    if !ip.is_unspecified() {
        return ip;
    }
    let addresses = interface_addresses();
    let wanted_v6 = ip.is_ipv6();
    addresses
        .iter()
        .find(|a| a.is_ipv4())
        .or_else(|| addresses.iter().find(|a| wanted_v6 && a.is_ipv6()))
        .copied()
        .unwrap_or(if wanted_v6 {
            IpAddr::V6(Ipv6Addr::LOCALHOST)
        } else {
            IpAddr::V4(Ipv4Addr::LOCALHOST)
        })
}

/// The addresses of the interfaces that are up, except loopback and IPv6 link-local ones,
/// in the kernel's order; empty if they cannot be listed.
fn interface_addresses() -> Vec<IpAddr> {
    let mut list: *mut libc::ifaddrs = ptr::null_mut();
    // SAFETY: getifaddrs fills `list` with a linked list that we free below.
    if unsafe { libc::getifaddrs(&mut list) } != 0 {
        return Vec::new();
    }
    let mut addresses = Vec::new();
    let mut entry = list;
    while !entry.is_null() {
        // SAFETY: `entry` is a node of the list getifaddrs returned, not yet freed.
        let ifa = unsafe { &*entry };
        let up = ifa.ifa_flags & libc::IFF_UP as u32 != 0;
        let loopback = ifa.ifa_flags & libc::IFF_LOOPBACK as u32 != 0;
        if up && !loopback && !ifa.ifa_addr.is_null() {
            // SAFETY: a non-null ifa_addr points to a sockaddr whose family says its type.
            if let Some(ip) = unsafe { ip_of(ifa.ifa_addr) } {
                addresses.push(ip);
            }
        }
        entry = ifa.ifa_next;
    }
    // SAFETY: `list` came from getifaddrs and is freed once; nothing refers to it now.
    unsafe { libc::freeifaddrs(list) };
    addresses
}

/// The IP address in `sockaddr`, unless it is of another family or IPv6 link-local.
///
/// # Safety
/// `sockaddr` points to a valid socket address of the size its family implies.
unsafe fn ip_of(sockaddr: *const libc::sockaddr) -> Option<IpAddr> {
    // SAFETY: the caller's promise; the casts follow sa_family.
    unsafe {
        match i32::from((*sockaddr).sa_family) {
            libc::AF_INET => {
                let v4 = &*sockaddr.cast::<libc::sockaddr_in>();
                Some(IpAddr::V4(Ipv4Addr::from(u32::from_be(v4.sin_addr.s_addr))))
            }
            libc::AF_INET6 => {
                let v6 = Ipv6Addr::from((*sockaddr.cast::<libc::sockaddr_in6>()).sin6_addr.s6_addr);
                (!v6.is_unicast_link_local()).then_some(IpAddr::V6(v6))
            }
            _ => None,
        }
    }
}
