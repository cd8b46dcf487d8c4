//! Which address this node gives the others when it listens on every interface.
//!
//! In order: `--advertise`; the source address the kernel would use towards the first
//! seed that resolves (a connected UDP socket, no packet sent); the first non-loopback
//! IPv4 address of the host. An agent bound to one address just advertises it.

use std::ffi::CStr;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs, UdpSocket};

/// The address to advertise for a socket bound to `bound`.
pub fn advertised(
    bound: SocketAddr,
    advertise: Option<IpAddr>,
    seeds: &[String],
) -> Result<SocketAddr, String> {
    let ip = match advertise {
        Some(ip) => ip,
        None if !bound.ip().is_unspecified() => bound.ip(),
        None => towards_seeds(seeds)
            .or_else(first_non_loopback)
            .ok_or("no address to advertise: the host has no non-loopback IPv4 address and no seed resolves (pass --advertise IP)")?,
    };
    Ok(SocketAddr::new(ip, bound.port()))
}

fn towards_seeds(seeds: &[String]) -> Option<IpAddr> {
    seeds.iter().find_map(|seed| {
        let target = seed.to_socket_addrs().ok()?.next()?;
        let unspecified: IpAddr = if target.is_ipv4() {
            Ipv4Addr::UNSPECIFIED.into()
        } else {
            std::net::Ipv6Addr::UNSPECIFIED.into()
        };
        let probe = UdpSocket::bind((unspecified, 0)).ok()?;
        probe.connect(target).ok()?;
        let ip = probe.local_addr().ok()?.ip();
        (!ip.is_unspecified()).then_some(ip)
    })
}

fn first_non_loopback() -> Option<IpAddr> {
    let mut list: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `list` with a linked list that we free below; we only read
    // it in between.
    if unsafe { libc::getifaddrs(&mut list) } != 0 {
        return None;
    }
    let mut found = None;
    let mut cursor = list;
    while !cursor.is_null() && found.is_none() {
        // SAFETY: `cursor` is a node of the list getifaddrs returned, not yet freed.
        let entry = unsafe { &*cursor };
        if !entry.ifa_addr.is_null() {
            // SAFETY: ifa_addr points to a sockaddr; its family says whether it is a
            // sockaddr_in, which is then the type it points to.
            let family = i32::from(unsafe { (*entry.ifa_addr).sa_family });
            if family == libc::AF_INET {
                // SAFETY: an AF_INET address is a sockaddr_in.
                let inet = unsafe { &*(entry.ifa_addr as *const libc::sockaddr_in) };
                let ip = Ipv4Addr::from(u32::from_be(inet.sin_addr.s_addr));
                if !ip.is_loopback() {
                    found = Some(IpAddr::V4(ip));
                    // SAFETY: ifa_name is a NUL-terminated interface name.
                    let name = unsafe { CStr::from_ptr(entry.ifa_name) };
                    tracing::debug!(
                        "advertising {ip}, the address of {}",
                        name.to_string_lossy()
                    );
                }
            }
        }
        cursor = entry.ifa_next;
    }
    // SAFETY: `list` came from getifaddrs and is freed once.
    unsafe { libc::freeifaddrs(list) };
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_specific_bind_address_is_advertised_as_is() {
        let bound: SocketAddr = "10.1.2.3:7000".parse().unwrap();
        assert_eq!(advertised(bound, None, &[]), Ok(bound));
    }

    #[test]
    fn advertise_overrides_and_keeps_the_port() {
        let bound: SocketAddr = "0.0.0.0:7000".parse().unwrap();
        let advertised = advertised(bound, Some("10.9.9.9".parse().unwrap()), &[]);
        assert_eq!(advertised, Ok("10.9.9.9:7000".parse().unwrap()));
    }

    #[test]
    fn the_route_to_a_seed_gives_the_source_address() {
        let bound: SocketAddr = "0.0.0.0:7000".parse().unwrap();
        let seeds = ["127.0.0.1:9".to_string()];
        assert_eq!(
            advertised(bound, None, &seeds),
            Ok("127.0.0.1:7000".parse().unwrap())
        );
    }
}
