//! A limit on failed authentications per client address.
//!
//! A bearer token cannot be guessed, but a client that sends token after token (forged, replayed,
//! stolen and expired) costs us a signature check each, and with made-up key ids a JWKS fetch now
//! and then. So an address that fails authentication `max_failures` times within one window is
//! refused, for every request that carries credentials, with 429 `too_many_authentication_failures`
//! and `Retry-After` until that window has passed; its tokens are not even verified meanwhile.
//! Requests without credentials still get their 401 and are not counted: they cost nothing to
//! refuse, and a client that calls before its user has signed in must not use up the budget of
//! everyone behind the same address.
//!
//! - **Window**: fixed, starting at the address's first failure. A success does not reset it: one
//!   valid token must not buy an attacker a fresh budget.
//! - **Address**: the TCP peer (`ConnectInfo<SocketAddr>`, which `cim serve` provides). IPv6 peers
//!   are counted by their /64 prefix, since one host usually holds a whole /64. `X-Forwarded-For` is
//!   believed only from the configured trusted proxies, read from the right: the first address that
//!   is not a trusted proxy is the client. By default no proxy is trusted and the header is ignored.
//! - **No peer address** (a router served without connect info): all such requests share one
//!   budget, and a warning says so once. The limit is then coarser, never off.
//! - **Memory**: at most `max_addresses` windows are kept; when a new address fails and the table is
//!   full, expired windows go first, then the oldest one within its budget, and the oldest limited
//!   one only when every tracked address is limited (so failing from many addresses does not buy a
//!   limited one a fresh budget).
//! - **Cost on the success path**: one atomic load while no address has failed, else one short lock.
//!
//! Nothing here logs or counts an address: the metrics count failures and refusals only.

use axum::extract::ConnectInfo;
use axum::http::request::Parts;
use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// How strict the limit is (`cim serve`: `CIM_AUTH_FAILURE_*`, `CIM_TRUSTED_PROXIES`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthLimitSettings {
    /// Failed authentications one address may have per window; 0 turns the limit off.
    pub max_failures: u32,
    pub window: Duration,
    /// How many addresses are tracked at once (bounds the memory a flood of addresses can take).
    pub max_addresses: usize,
    /// Peers whose `X-Forwarded-For` names the client (a reverse proxy or load balancer).
    pub trusted_proxies: Vec<IpAddr>,
}

/// The defaults of `cim serve`.
pub const DEFAULT_MAX_FAILURES: u32 = 30;
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(60);
pub const DEFAULT_MAX_ADDRESSES: usize = 10_000;

impl Default for AuthLimitSettings {
    fn default() -> Self {
        Self {
            max_failures: DEFAULT_MAX_FAILURES,
            window: DEFAULT_WINDOW,
            max_addresses: DEFAULT_MAX_ADDRESSES,
            trusted_proxies: Vec::new(),
        }
    }
}

impl AuthLimitSettings {
    /// No limit (for tests that send more bad tokens than any limit allows, on purpose).
    pub fn off() -> Self {
        Self {
            max_failures: 0,
            ..Self::default()
        }
    }
}

/// Who a failure is counted against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClientKey {
    V4(Ipv4Addr),
    /// The first 64 bits of an IPv6 address.
    V6Prefix(u64),
    /// No peer address was available (see the module doc).
    Unknown,
}

impl ClientKey {
    pub fn of(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => ClientKey::V4(v4),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => ClientKey::V4(v4),
                None => ClientKey::V6Prefix((u128::from(v6) >> 64) as u64),
            },
        }
    }
}

/// One address's current window.
#[derive(Debug, Clone, Copy)]
struct Window {
    started: Instant,
    failures: u32,
}

#[derive(Debug, Default)]
struct Table {
    windows: HashMap<ClientKey, Window>,
    /// (address, start of a window) in the order windows started. An entry whose window has since
    /// been restarted is stale and skipped; every stale entry is older than the window, so the
    /// purge at the front removes it soon.
    order: VecDeque<(ClientKey, Instant)>,
}

/// What [`AuthLimiter::record_failure`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// Counted; the address is still within its budget (or the limit is off).
    Counted,
    /// This failure used up the address's budget: it is refused from now on.
    LimitReached,
}

/// The failure counts of a process, shared by every request.
#[derive(Debug)]
pub struct AuthLimiter {
    settings: AuthLimitSettings,
    table: Mutex<Table>,
    /// `table.windows.len()`, readable without the lock.
    tracked: AtomicUsize,
    warned_no_peer: AtomicBool,
}

impl AuthLimiter {
    pub fn new(settings: AuthLimitSettings) -> Self {
        Self {
            settings,
            table: Mutex::new(Table::default()),
            tracked: AtomicUsize::new(0),
            warned_no_peer: AtomicBool::new(false),
        }
    }

    pub fn settings(&self) -> &AuthLimitSettings {
        &self.settings
    }

    fn enabled(&self) -> bool {
        self.settings.max_failures > 0
    }

    /// The client a request is counted against.
    pub fn client(&self, parts: &Parts) -> ClientKey {
        let Some(ConnectInfo(peer)) = parts.extensions.get::<ConnectInfo<SocketAddr>>() else {
            if self.enabled() && !self.warned_no_peer.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    "requests carry no peer address (the router is served without connect info): \
                     all of them share one budget of failed authentications"
                );
            }
            return ClientKey::Unknown;
        };
        let forwarded = parts
            .headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim);
        ClientKey::of(client_address(
            peer.ip(),
            forwarded,
            &self.settings.trusted_proxies,
        ))
    }

    /// How long `client` must still wait, when its budget is used up.
    pub fn refused(&self, client: ClientKey, now: Instant) -> Option<Duration> {
        if !self.enabled() || self.tracked.load(Ordering::Relaxed) == 0 {
            return None;
        }
        let table = self.lock();
        let window = table.windows.get(&client)?;
        let ends = window.started + self.settings.window;
        (window.failures >= self.settings.max_failures && now < ends).then(|| ends - now)
    }

    /// Counts one failed authentication of `client`.
    pub fn record_failure(&self, client: ClientKey, now: Instant) -> Recorded {
        if !self.enabled() {
            return Recorded::Counted;
        }
        let window_length = self.settings.window;
        let mut table = self.lock();
        table.purge_expired(now, window_length);
        let live = table
            .windows
            .get(&client)
            .is_some_and(|w| now < w.started + window_length);
        if !live {
            // A new window: a new address, or one whose last window has passed.
            if !table.windows.contains_key(&client) {
                table.make_room(
                    self.settings.max_addresses.max(1),
                    self.settings.max_failures,
                );
            }
            table.order.push_back((client, now));
            table.windows.insert(
                client,
                Window {
                    started: now,
                    failures: 0,
                },
            );
        }
        let current = table
            .windows
            .get_mut(&client)
            .expect("present or just inserted");
        current.failures = current.failures.saturating_add(1);
        let reached = current.failures == self.settings.max_failures;
        self.tracked.store(table.windows.len(), Ordering::Relaxed);
        if reached {
            Recorded::LimitReached
        } else {
            Recorded::Counted
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        // Counts only: a panic while holding the lock leaves nothing inconsistent worth failing on.
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Table {
    /// Forgets every window that has passed (they sit at the front of `order`).
    fn purge_expired(&mut self, now: Instant, window: Duration) {
        while let Some(&(client, started)) = self.order.front() {
            if now < started + window {
                break;
            }
            self.order.pop_front();
            self.forget(client, started);
        }
    }

    /// Forgets windows until there is room for one more address: the oldest that has not used up
    /// its budget, or, when every one has, the oldest. Limited addresses are kept longest, so that
    /// failing from many other addresses does not buy a limited one a fresh budget.
    fn make_room(&mut self, max_addresses: usize, max_failures: u32) {
        while self.windows.len() >= max_addresses {
            let within_budget = self.order.iter().position(|(client, started)| {
                self.windows
                    .get(client)
                    .is_some_and(|w| w.started == *started && w.failures < max_failures)
            });
            let Some((client, started)) = self.order.remove(within_budget.unwrap_or(0)) else {
                break;
            };
            self.forget(client, started);
        }
    }

    /// Removes `client`'s window if it is the one that started at `started` (not a later one).
    fn forget(&mut self, client: ClientKey, started: Instant) {
        if self
            .windows
            .get(&client)
            .is_some_and(|w| w.started == started)
        {
            self.windows.remove(&client);
        }
    }
}

/// The client's address: the peer, or, when the peer is a trusted proxy, the address it (and the
/// trusted proxies before it) forwarded for, read from the right of `X-Forwarded-For`. A hop that
/// does not parse ends the walk: what was appended by a proxy we trust is believed, nothing else.
fn client_address<'a>(
    peer: IpAddr,
    forwarded: impl DoubleEndedIterator<Item = &'a str>,
    trusted: &[IpAddr],
) -> IpAddr {
    let is_trusted = |ip: IpAddr| trusted.contains(&ip.to_canonical());
    let mut client = peer.to_canonical();
    if !is_trusted(client) {
        return client;
    }
    for hop in forwarded.rev() {
        let parsed = hop
            .parse::<IpAddr>()
            .or_else(|_| hop.parse::<SocketAddr>().map(|s| s.ip()));
        let Ok(ip) = parsed else {
            break;
        };
        client = ip.to_canonical();
        if !is_trusted(client) {
            break;
        }
    }
    client
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(max_failures: u32, max_addresses: usize) -> AuthLimiter {
        AuthLimiter::new(AuthLimitSettings {
            max_failures,
            window: Duration::from_secs(60),
            max_addresses,
            trusted_proxies: Vec::new(),
        })
    }

    fn v4(last: u8) -> ClientKey {
        ClientKey::V4(Ipv4Addr::new(192, 0, 2, last))
    }

    #[test]
    fn an_address_is_refused_after_its_budget_until_the_window_has_passed() {
        let limiter = limiter(3, 100);
        let t0 = Instant::now();
        assert_eq!(limiter.record_failure(v4(1), t0), Recorded::Counted);
        assert_eq!(limiter.record_failure(v4(1), t0), Recorded::Counted);
        assert_eq!(limiter.refused(v4(1), t0), None);
        assert_eq!(limiter.record_failure(v4(1), t0), Recorded::LimitReached);
        let later = t0 + Duration::from_secs(20);
        assert_eq!(limiter.refused(v4(1), later), Some(Duration::from_secs(40)));
        // Others are not affected.
        assert_eq!(limiter.refused(v4(2), later), None);
        // The window began at the first failure; once it has passed, a new budget.
        let after = t0 + Duration::from_secs(60);
        assert_eq!(limiter.refused(v4(1), after), None);
        assert_eq!(limiter.record_failure(v4(1), after), Recorded::Counted);
        assert_eq!(limiter.refused(v4(1), after), None);
    }

    #[test]
    fn zero_turns_the_limit_off() {
        let limiter = limiter(0, 100);
        let t0 = Instant::now();
        for _ in 0..1000 {
            limiter.record_failure(v4(1), t0);
        }
        assert_eq!(limiter.refused(v4(1), t0), None);
        assert_eq!(limiter.tracked.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn a_flood_of_addresses_keeps_at_most_the_cap_and_forgets_the_oldest_first() {
        let limiter = limiter(2, 3);
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        // Four addresses within their budget, one second apart.
        for (i, last) in [1u8, 2, 3, 4].into_iter().enumerate() {
            limiter.record_failure(v4(last), at(i as u64));
        }
        // The oldest (address 1) was forgotten to make room for address 4.
        {
            let table = limiter.lock();
            assert_eq!(table.windows.len(), 3);
            assert!(!table.windows.contains_key(&v4(1)));
        }
        for last in 10..=250u8 {
            limiter.record_failure(v4(last), at(5));
        }
        let table = limiter.lock();
        assert_eq!(table.windows.len(), 3);
        assert!(table.order.len() <= 3, "{}", table.order.len());
        assert!(table.windows.contains_key(&v4(250)));
    }

    #[test]
    fn a_flood_of_other_addresses_does_not_forget_a_limited_one() {
        let limiter = limiter(2, 3);
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        // The first address uses up its budget; then hundreds of others fail once each.
        limiter.record_failure(v4(1), at(0));
        limiter.record_failure(v4(1), at(0));
        for last in 10..=250u8 {
            limiter.record_failure(v4(last), at(1));
        }
        assert!(limiter.refused(v4(1), at(2)).is_some());
        assert_eq!(limiter.lock().windows.len(), 3);
        // When every tracked address is limited, the oldest goes after all.
        for last in [20u8, 21, 22] {
            limiter.record_failure(v4(last), at(3));
            limiter.record_failure(v4(last), at(3));
        }
        assert_eq!(limiter.refused(v4(1), at(4)), None);
        assert_eq!(limiter.lock().windows.len(), 3);
    }

    #[test]
    fn expired_windows_are_forgotten_before_live_ones() {
        let limiter = limiter(2, 2);
        let t0 = Instant::now();
        limiter.record_failure(v4(1), t0);
        limiter.record_failure(v4(2), t0 + Duration::from_secs(30));
        limiter.record_failure(v4(2), t0 + Duration::from_secs(30));
        // Address 1's window has passed: it makes room, address 2 stays refused.
        let later = t0 + Duration::from_secs(61);
        limiter.record_failure(v4(3), later);
        assert!(limiter.refused(v4(2), later).is_some());
        assert_eq!(limiter.lock().windows.len(), 2);
    }

    #[test]
    fn ipv6_addresses_of_one_slash_64_count_together_and_mapped_ipv4_is_ipv4() {
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(ClientKey::of(a), ClientKey::of(b));
        assert_ne!(ClientKey::of(a), ClientKey::of(c));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(ClientKey::of(mapped), v4(7));
    }

    #[test]
    fn x_forwarded_for_is_believed_only_from_trusted_proxies() {
        let proxy: IpAddr = "10.0.0.1".parse().unwrap();
        let inner: IpAddr = "10.0.0.2".parse().unwrap();
        let client: IpAddr = "198.51.100.7".parse().unwrap();
        let trusted = [proxy, inner];
        let hops = |s: &'static str| s.split(',').map(str::trim);
        // Not a trusted peer: the header is ignored.
        let stranger: IpAddr = "203.0.113.9".parse().unwrap();
        assert_eq!(
            client_address(stranger, hops("198.51.100.7"), &trusted),
            stranger
        );
        // A trusted peer: the rightmost address that is not a trusted proxy.
        assert_eq!(
            client_address(proxy, hops("1.1.1.1, 198.51.100.7, 10.0.0.2"), &trusted),
            client
        );
        // A hop that does not parse stops the walk at the last believed address.
        assert_eq!(
            client_address(proxy, hops("198.51.100.7, garbage"), &trusted),
            proxy
        );
        // No header at all: the proxy itself.
        assert_eq!(
            client_address(proxy, hops("").filter(|h| !h.is_empty()), &trusted),
            proxy
        );
        assert_eq!(
            client_address(proxy, hops("198.51.100.7:4711"), &trusted),
            client
        );
    }
}
