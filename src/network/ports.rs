//! Published ports: `-p [IP:]HOSTPORT:CTRPORT[/tcp|udp]`.

use std::fmt;
use std::io::ErrorKind;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, UdpSocket};
use std::str::FromStr;

use super::NetworkError;

/// A transport protocol of a published port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    Tcp,
    Udp,
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        })
    }
}

/// One `-p`: the host address (all when absent) and port, the
/// container's port, the protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortMap {
    pub host_ip: Option<IpAddr>,
    pub host_port: u16,
    pub container_port: u16,
    pub proto: Proto,
}

fn port(spec: &str, text: &str) -> Result<u16, NetworkError> {
    match text.parse::<u16>() {
        Ok(p) if p > 0 => Ok(p),
        _ => Err(NetworkError::BadPort {
            spec: spec.into(),
            why: "a port is a number from 1 to 65535",
        }),
    }
}

/// Split `[IP:]HOST:CTR` into the address text (if any), host and
/// container port texts; an IPv6 address is in brackets.
fn split(spec: &str, rest: &str) -> Result<(Option<String>, String, String), NetworkError> {
    let bad = |why| NetworkError::BadPort {
        spec: spec.into(),
        why,
    };
    if let Some(v6) = rest.strip_prefix('[') {
        let (ip, ports) = v6
            .split_once("]:")
            .ok_or(bad("an IPv6 address ends with \"]:\""))?;
        let (h, c) = ports
            .split_once(':')
            .ok_or(bad("give both the host and the container port"))?;
        return Ok((Some(ip.into()), h.into(), c.into()));
    }
    let parts: Vec<&str> = rest.split(':').collect();
    match parts.as_slice() {
        [h, c] => Ok((None, h.to_string(), c.to_string())),
        [ip, h, c] => Ok((Some(ip.to_string()), h.to_string(), c.to_string())),
        [_] => Err(bad("give both the host and the container port")),
        _ => Err(bad("too many ':'")),
    }
}

impl FromStr for PortMap {
    type Err = NetworkError;
    fn from_str(spec: &str) -> Result<PortMap, NetworkError> {
        let (rest, proto) = match spec.rsplit_once('/') {
            Some((r, "tcp")) => (r, Proto::Tcp),
            Some((r, "udp")) => (r, Proto::Udp),
            Some(_) => {
                return Err(NetworkError::BadPort {
                    spec: spec.into(),
                    why: "the protocol is tcp or udp",
                });
            }
            None => (spec, Proto::Tcp),
        };
        let (ip, h, c) = split(spec, rest)?;
        let host_ip = match ip.as_deref() {
            None | Some("") => None,
            Some(ip) => Some(ip.parse().map_err(|_| NetworkError::BadPort {
                spec: spec.into(),
                why: "not an IP address",
            })?),
        };
        Ok(PortMap {
            host_ip,
            host_port: port(spec, &h)?,
            container_port: port(spec, &c)?,
            proto,
        })
    }
}

impl PortMap {
    /// pasta's spec for it: `[ADDR/]HOST:CTR` (after `-t` or `-u`).
    pub(super) fn pasta_spec(&self) -> String {
        let ports = format!("{}:{}", self.host_port, self.container_port);
        match self.host_ip {
            Some(ip) => format!("{ip}/{ports}"),
            None => ports,
        }
    }

    fn bind_addr(&self) -> SocketAddr {
        SocketAddr::new(
            self.host_ip.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
            self.host_port,
        )
    }
}

/// Bind each published port for a moment, to refuse a busy one (or one
/// the caller may not bind) with a clear error before anything is made.
pub(super) fn check_free(ports: &[PortMap]) -> Result<(), NetworkError> {
    for p in ports {
        let addr = p.bind_addr();
        let res = match p.proto {
            Proto::Tcp => TcpListener::bind(addr).map(drop),
            Proto::Udp => UdpSocket::bind(addr).map(drop),
        };
        let ip = addr.ip().to_string();
        match res {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::AddrInUse => {
                return Err(NetworkError::PortInUse {
                    ip,
                    port: p.host_port,
                    proto: p.proto,
                });
            }
            Err(source) => {
                return Err(NetworkError::PortBind {
                    ip,
                    port: p.host_port,
                    proto: p.proto,
                    source,
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_specs_parse_as_podman_reads_them() {
        let p: PortMap = "8080:80".parse().unwrap();
        assert_eq!((p.host_ip, p.host_port, p.container_port), (None, 8080, 80));
        assert_eq!(p.proto, Proto::Tcp);
        let p: PortMap = "127.0.0.1:8080:80/udp".parse().unwrap();
        assert_eq!(p.host_ip, Some("127.0.0.1".parse().unwrap()));
        assert_eq!(p.proto, Proto::Udp);
        assert_eq!(p.pasta_spec(), "127.0.0.1/8080:80");
        let p: PortMap = "[::1]:8080:80".parse().unwrap();
        assert_eq!(p.host_ip, Some("::1".parse().unwrap()));
        for bad in [
            "80",
            "a:80",
            "0:80",
            "8080:80/sctp",
            "1:2:3:4",
            "x.y:1:2",
            "70000:80",
        ] {
            assert!(bad.parse::<PortMap>().is_err(), "{bad}");
        }
    }
}
