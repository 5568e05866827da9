//! Ticks into bars: tumbling event-time windows per symbol.
//!
//! Per symbol, the watermark is the latest event time seen minus the allowed
//! lateness. A window `[start, end)` closes when the watermark passes its end
//! (or, for a quiet symbol, after a stretch of wall time without ticks: see
//! [`Windows::close_idle`]) and its bar is emitted as [`Output::Closed`]. A
//! tick for a closed window is still counted while the watermark has not
//! passed the window's end plus the grace period: the bar is emitted again as
//! [`Output::Revised`]. Later than that, the tick is [`Verdict::Late`] and
//! belongs in dead letters. A tick seen before (same time, price, size and
//! trade id) is counted once.
//!
//! Open is the price of the earliest tick by event time, close of the latest
//! (ties: first and last to arrive). Volume is the sum of sizes, or, for feeds
//! that send a cumulative day volume, its increase from the last tick before
//! the window to the last tick in it, so that consecutive bars add up to the
//! session's volume; a decrease (a new session) counts from zero.
#![warn(missing_docs)]

use std::collections::{BTreeSet, HashMap};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;
use std::time::{Duration, Instant};
use stockstream_core::RejectKind;

use stockstream_core::Tick;

pub use stockstream_core::bar_length::{session_date, BarLength};

/// How windows close and how late a tick may be.
#[derive(Debug, Clone, Copy)]
pub struct WindowConfig {
    /// The bars' length.
    pub length: BarLength,
    /// The watermark trails the latest event time by this much (milliseconds).
    pub allowed_lateness_ms: i64,
    /// A closed window still takes ticks, as revisions, until the watermark is
    /// this far past its end (milliseconds).
    pub grace_ms: i64,
}

impl WindowConfig {
    /// One-minute bars, 5 s of lateness, 1 min of grace.
    pub fn minutes() -> Self {
        WindowConfig { length: BarLength::Fixed(60_000), allowed_lateness_ms: 5_000, grace_ms: 60_000 }
    }
}

/// A bar made of ticks.
#[derive(Debug, Clone, PartialEq)]
pub struct WindowBar {
    /// The symbol.
    pub symbol: Arc<str>,
    /// Start of the window, Unix milliseconds (inclusive).
    pub start_ms: i64,
    /// End of the window, Unix milliseconds (exclusive).
    pub end_ms: i64,
    /// Price of the earliest tick.
    pub open: f64,
    /// Highest price.
    pub high: f64,
    /// Lowest price.
    pub low: f64,
    /// Price of the latest tick.
    pub close: f64,
    /// Shares traded in the window.
    pub volume: f64,
    /// Σ price × size / Σ size over its ticks (a feed's size being its day
    /// volume's increase since the symbol's previous tick); None when no
    /// tick had a known size.
    pub vwap: Option<f64>,
    /// Ticks counted (duplicates once).
    pub ticks: u32,
    /// 0 when first closed, then one more for each revision.
    pub revision: u32,
    /// True while the window is still open (a forming bar).
    pub partial: bool,
}

/// What became of one tick.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Counted in an open window.
    Counted,
    /// Counted in a window already closed: its bar was emitted again.
    Revised,
    /// Seen before: not counted again.
    Duplicate,
    /// Its window is past the grace period.
    Late,
    /// A daily bar's tick outside any regular session.
    OutsideSession,
}

impl Verdict {
    /// The dead-letter reason of a tick that was not counted, if it belongs there.
    pub fn reject_kind(self) -> Option<RejectKind> {
        match self {
            Verdict::Late => Some(RejectKind::Late),
            Verdict::OutsideSession => Some(RejectKind::OutsideSession),
            _ => None,
        }
    }
}

/// A bar to store.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// A window closed.
    Closed(WindowBar),
    /// A closed window took a late tick (or its volume changed with its
    /// predecessor's): the corrected bar, to upsert over the first.
    Revised(WindowBar),
}

impl Output {
    /// The bar, whichever kind.
    pub fn bar(&self) -> &WindowBar {
        match self {
            Output::Closed(b) | Output::Revised(b) => b,
        }
    }
}

/// FNV-1a: symbols and fingerprints are short; SipHash's DoS resistance
/// buys nothing for keys a feed chose among a handful.
#[derive(Default)]
struct Fnv(u64);

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 { 0xcbf2_9ce4_8422_2325 } else { self.0 };
        for b in bytes {
            h = (h ^ *b as u64).wrapping_mul(0x100_0000_01b3);
        }
        self.0 = h;
    }
}

type FnvBuild = BuildHasherDefault<Fnv>;

/// A tick's identity, mixed into 64 bits.
fn fingerprint(tick: &Tick) -> u64 {
    let mut h = (tick.time_ms as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    for v in [tick.price.to_bits(), tick.size.to_bits()] {
        h = (h ^ v).wrapping_mul(0xff51_afd7_ed55_8ccd).rotate_left(29);
    }
    if let Some(id) = &tick.trade_id {
        let mut f = Fnv::default();
        f.write(id.as_bytes());
        h ^= f.finish().rotate_left(17);
    }
    h ^ (h >> 31)
}

/// Ticks a window remembers for finding duplicates (16 bytes each: 16 MiB):
/// a one-hour bar of a symbol trading 300 times a second fits.
pub const MAX_SEEN: usize = 1 << 20;

/// One window's running bar.
#[derive(Debug)]
struct Acc {
    start: i64,
    end: i64,
    open: f64,
    open_t: i64,
    high: f64,
    low: f64,
    close: f64,
    close_t: i64,
    size: f64,
    /// Σ price × size and Σ size of the ticks whose size is known (VWAP).
    price_size: f64,
    sized: f64,
    /// Day volume at the earliest and the latest tick, for feeds that send it.
    dv_first: Option<f64>,
    dv_last: Option<f64>,
    ticks: u32,
    closed: bool,
    revision: u32,
    /// The bus offset of the tick that opened it (offsets only grow, so its
    /// earliest): a consumer commits no further than the oldest window it holds.
    first_pos: i64,
    /// (time, fingerprint) of every tick counted in time order, sorted by
    /// time: ticks arrive mostly in order, so most are appended and need no
    /// lookup (a tick later than all before it cannot be a duplicate).
    seen: Vec<(i64, u64)>,
    /// Those of ticks counted out of order: inserting them into `seen` would
    /// move its tail each time, quadratic over a shuffled stream.
    seen_late: BTreeSet<(i64, u64)>,
}

impl Acc {
    fn new(start: i64, end: i64, closed: bool, first_pos: i64) -> Self {
        Acc {
            start,
            end,
            open: f64::NAN,
            open_t: i64::MAX,
            high: f64::NEG_INFINITY,
            low: f64::INFINITY,
            close: f64::NAN,
            close_t: i64::MIN,
            size: 0.0,
            price_size: 0.0,
            sized: 0.0,
            dv_first: None,
            dv_last: None,
            ticks: 0,
            closed,
            revision: 0,
            first_pos,
            seen: Vec::new(),
            seen_late: BTreeSet::new(),
        }
    }

    /// Counts a tick of `size` shares (for VWAP); false for a duplicate. True
    /// in the second place when the tick became the window's latest (its day
    /// volume now ends the window).
    fn add(&mut self, tick: &Tick, size: f64) -> (bool, bool) {
        let t = tick.time_ms;
        let fp = fingerprint(tick);
        if t > self.close_t {
            self.seen.push((t, fp));
        } else {
            let from = self.seen.partition_point(|&(time, _)| time < t);
            let in_order = self.seen[from..].iter().take_while(|&&(time, _)| time == t).any(|&(_, f)| f == fp);
            // O(log n) either way, whatever the order ticks come in.
            if in_order || !self.seen_late.insert((t, fp)) {
                return (false, false);
            }
        }
        if self.seen.len() + self.seen_late.len() > MAX_SEEN {
            // Bounded memory: a window of more ticks than this forgets its
            // oldest ones; a duplicate of one of those would count again.
            let cut = match (self.seen.get(self.seen.len() / 2), self.seen_late.iter().nth(self.seen_late.len() / 2)) {
                (Some(&(a, _)), Some(&(b, _))) => a.max(b),
                (Some(&(a, _)), None) => a,
                (None, Some(&(b, _))) => b,
                (None, None) => i64::MIN,
            };
            let keep_from = self.seen.partition_point(|&(time, _)| time < cut);
            self.seen.drain(..keep_from);
            self.seen_late = self.seen_late.split_off(&(cut, 0));
        }
        if t < self.open_t {
            self.open = tick.price;
            self.open_t = t;
            self.dv_first = tick.day_volume;
        }
        let latest = t >= self.close_t;
        if latest {
            self.close = tick.price;
            self.close_t = t;
            self.dv_last = tick.day_volume;
        }
        self.high = self.high.max(tick.price);
        self.low = self.low.min(tick.price);
        self.size += tick.size;
        self.price_size += tick.price * size;
        self.sized += size;
        self.ticks += 1;
        (true, latest)
    }

    fn bar(&self, symbol: &Arc<str>, prev_dv: Option<f64>) -> WindowBar {
        let volume = match (self.dv_last, prev_dv) {
            (Some(last), Some(prev)) if last >= prev => last - prev,
            (Some(last), Some(_)) => last,
            (Some(last), None) => last - self.dv_first.unwrap_or(last),
            (None, _) => self.size,
        };
        WindowBar {
            symbol: symbol.clone(),
            start_ms: self.start,
            end_ms: self.end,
            open: self.open,
            high: self.high,
            low: self.low,
            close: self.close,
            volume,
            // Within the bar's range but for rounding, which it is kept to.
            vwap: (self.sized > 0.0).then(|| (self.price_size / self.sized).clamp(self.low, self.high)),
            ticks: self.ticks,
            revision: self.revision,
            partial: !self.closed,
        }
    }
}

/// One symbol's windows: open ones and closed ones still in their grace
/// period, oldest first (a handful at most).
struct SymbolWindows {
    name: Arc<str>,
    latest_t: i64,
    windows: Vec<Acc>,
    /// Day volume at the end of the newest window past its grace period.
    finalized_dv: Option<f64>,
    /// Ticks counted so far, and when that count last changed (idle closing).
    ticks: u64,
    idle_mark: (u64, Option<Instant>),
    /// The watermark at which a window next closes or leaves its grace
    /// period (`i64::MIN`: work it out again).
    due: i64,
    /// Windows that end this far before it are retired, whatever the
    /// watermark: where a resumed consumer's predecessor had got to.
    retired: i64,
}

impl SymbolWindows {
    /// Day volume at the last tick before window `i`.
    fn prev_dv(&self, i: usize) -> Option<f64> {
        self.windows[..i].iter().rev().find_map(|w| w.dv_last).or(self.finalized_dv)
    }

    fn bar(&self, i: usize) -> WindowBar {
        self.windows[i].bar(&self.name, self.prev_dv(i))
    }
}

/// Every symbol's windows.
pub struct Windows {
    config: WindowConfig,
    index: HashMap<Box<str>, u32, FnvBuild>,
    symbols: Vec<SymbolWindows>,
    /// (address of a shared name, its symbol), by the address's bits.
    by_address: [(usize, u32); NAME_CACHE],
    /// Duplicate lists of retired windows, cleared, for new windows.
    spare: Vec<Vec<(i64, u64)>>,
}

/// Retired windows' lists kept for reuse.
const SPARE: usize = 64;

/// Slots of the name cache.
const NAME_CACHE: usize = 64;

impl Windows {
    /// No windows yet.
    pub fn new(config: WindowConfig) -> Self {
        Windows {
            config,
            index: HashMap::default(),
            symbols: Vec::new(),
            by_address: [(0, 0); NAME_CACHE],
            spare: Vec::new(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &WindowConfig {
        &self.config
    }

    #[inline]
    fn symbol(&mut self, name: &Arc<str>) -> usize {
        // A feed shares one name among its ticks of a symbol: its address
        // finds it in a small direct-mapped cache without reading the text,
        // whatever order the symbols come in.
        let address = Arc::as_ptr(name) as *const u8 as usize;
        let slot = (address >> 4) % NAME_CACHE;
        let (cached, i) = self.by_address[slot];
        if cached == address && Arc::ptr_eq(&self.symbols[i as usize].name, name) {
            return i as usize;
        }
        let i = self.symbol_by_text(name);
        self.by_address[slot] = (address, i as u32);
        i
    }

    fn symbol_by_text(&mut self, name: &Arc<str>) -> usize {
        let i = match self.index.get(&**name) {
            Some(&i) => i as usize,
            None => {
                let i = self.symbols.len();
                self.index.insert((**name).into(), i as u32);
                self.symbols.push(SymbolWindows {
                    name: name.clone(),
                    latest_t: i64::MIN,
                    windows: Vec::new(),
                    finalized_dv: None,
                    ticks: 0,
                    idle_mark: (0, None),
                    due: i64::MIN,
                    retired: i64::MIN,
                });
                i
            }
        };
        i
    }

    /// Counts a tick; bars closed or revised by it are pushed to `out`.
    pub fn push(&mut self, tick: &Tick, out: &mut Vec<Output>) -> Verdict {
        self.push_at(tick, i64::MAX, out)
    }

    /// [`Windows::push`] for a tick read at bus offset `pos`.
    pub fn push_at(&mut self, tick: &Tick, pos: i64, out: &mut Vec<Output>) -> Verdict {
        let config = self.config;
        let s = self.symbol(&tick.symbol);
        let sym = &mut self.symbols[s];
        let t = tick.time_ms;
        // Most ticks fall in the newest window: found without a division.
        let (start, end) = match sym.windows.last() {
            Some(w) if w.start <= t && t < w.end => (w.start, w.end),
            _ => match config.length.window(t) {
                Some(window) => window,
                None => return Verdict::OutsideSession,
            },
        };
        let watermark = sym.latest_t.saturating_sub(config.allowed_lateness_ms);
        if watermark.max(sym.retired) >= end.saturating_add(config.grace_ms) {
            return Verdict::Late;
        }
        // Most ticks belong to the newest window.
        let found = sym.windows.iter().rposition(|w| w.start <= start);
        let i = match found {
            Some(i) if sym.windows[i].start == start => i,
            _ => {
                let at = found.map_or(0, |i| i + 1);
                let mut acc = Acc::new(start, end, end <= watermark, pos);
                // A retired window's list, cleared: fresh large lists are new
                // pages from the kernel, zeroed, then handed back, window after window.
                acc.seen = self.spare.pop().unwrap_or_default();
                sym.windows.insert(at, acc);
                sym.due = i64::MIN;
                at
            }
        };
        // A tick's size for VWAP: the feed's own, or its day volume's
        // increase since the symbol's latest tick; unknown (0) for the first
        // tick seen and for one older than the latest.
        let size = match tick.day_volume {
            None => tick.size,
            Some(dv) if t >= sym.latest_t => {
                match sym.windows.iter().rev().find_map(|w| w.dv_last).or(sym.finalized_dv) {
                    Some(previous) if dv >= previous => dv - previous,
                    Some(_) => dv, // a new session's count
                    None => 0.0,
                }
            }
            Some(_) => 0.0,
        };
        let (counted, latest) = sym.windows[i].add(tick, size);
        if !counted {
            return Verdict::Duplicate;
        }
        sym.ticks += 1;
        let verdict = if sym.windows[i].closed {
            let w = &mut sym.windows[i];
            if w.ticks == 1 {
                out.push(Output::Closed(sym.bar(i)));
            } else {
                w.revision += 1;
                out.push(Output::Revised(sym.bar(i)));
            }
            // The next window's volume starts where this one's now ends.
            if latest && tick.day_volume.is_some() {
                if let Some(j) = (i + 1..sym.windows.len()).find(|&j| sym.windows[j].dv_last.is_some()) {
                    if sym.windows[j].closed {
                        sym.windows[j].revision += 1;
                        out.push(Output::Revised(sym.bar(j)));
                    }
                }
            }
            Verdict::Revised
        } else {
            Verdict::Counted
        };
        if t > sym.latest_t {
            sym.latest_t = t;
            if t.saturating_sub(config.allowed_lateness_ms) >= sym.due {
                advance(sym, &config, out, &mut self.spare);
            }
        }
        verdict
    }

    /// The forming (or newest) bar of the window a tick fell in, for live views.
    pub fn bar_at(&self, symbol: &str, time_ms: i64) -> Option<WindowBar> {
        let (start, _) = self.config.length.window(time_ms)?;
        let sym = &self.symbols[*self.index.get(symbol)? as usize];
        let i = sym.windows.iter().rposition(|w| w.start == start)?;
        Some(sym.bar(i))
    }

    /// Closes the open windows of every symbol that has had no tick for
    /// `idle` of wall time, as of `now`. Call it every so often: reading the
    /// clock per tick would cost more than the rest of the work.
    pub fn close_idle(&mut self, now: Instant, idle: Duration, out: &mut Vec<Output>) {
        for sym in &mut self.symbols {
            match sym.idle_mark {
                (count, Some(since)) if count == sym.ticks => {
                    if now.duration_since(since) >= idle {
                        close_open(sym, |_| true, out);
                    }
                }
                _ => sym.idle_mark = (sym.ticks, Some(now)),
            }
        }
    }

    /// Closes every open window (the end of a finite stream).
    pub fn flush(&mut self, out: &mut Vec<Output>) {
        for sym in &mut self.symbols {
            close_open(sym, |_| true, out);
        }
    }

    /// Where a symbol's windows stand, for a consumer to keep beside its
    /// stored bars.
    pub fn standing(&self, symbol: &str) -> Option<Standing> {
        let sym = &self.symbols[*self.index.get(symbol)? as usize];
        Some(Standing {
            watermark_ms: sym.latest_t.saturating_sub(self.config.allowed_lateness_ms).max(sym.retired),
            day_volume: sym.finalized_dv,
            oldest_pos: sym.windows.iter().map(|w| w.first_pos).min(),
        })
    }

    /// Takes up a symbol where an earlier run left it (a [`Standing`] kept
    /// with its bars): ticks of windows that watermark had retired are late,
    /// and the oldest window still to come starts its volume from
    /// `day_volume`. The windows it held are rebuilt from their ticks, read
    /// again from the bus.
    pub fn resume(&mut self, symbol: &Arc<str>, watermark_ms: i64, day_volume: Option<f64>) {
        let s = self.symbol(symbol);
        let sym = &mut self.symbols[s];
        sym.retired = sym.retired.max(watermark_ms);
        if sym.finalized_dv.is_none() {
            sym.finalized_dv = day_volume;
        }
    }

    /// Drops everything held for a symbol (its partition moved to another
    /// consumer, which rebuilds it), the symbol's entry too: symbols that come
    /// and go across rebalances take no memory once gone.
    pub fn forget(&mut self, symbol: &str) {
        let Some(i) = self.index.remove(symbol) else { return };
        self.symbols.swap_remove(i as usize);
        if let Some(moved) = self.symbols.get(i as usize) {
            self.index.insert((*moved.name).into(), i);
        }
        // Cached places may name the removed or the moved symbol.
        self.by_address = [(0, 0); NAME_CACHE];
    }

    /// Ticks remembered for finding duplicates, all windows together.
    pub fn remembered(&self) -> usize {
        self.symbols.iter().flat_map(|s| &s.windows).map(|w| w.seen.len()).sum()
    }

    /// Symbols seen so far.
    pub fn symbols(&self) -> usize {
        self.symbols.len()
    }

    /// Windows held now, open or in their grace period (memory is bounded by
    /// this).
    pub fn held(&self) -> usize {
        self.symbols.iter().map(|s| s.windows.len()).sum()
    }
}

/// Where a symbol's windows stand.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Standing {
    /// Windows ending at least the grace period before this are retired.
    pub watermark_ms: i64,
    /// Day volume at the end of the newest retired window.
    pub day_volume: Option<f64>,
    /// The bus offset of the earliest tick of a window still held.
    pub oldest_pos: Option<i64>,
}

/// Moves the watermark: closes windows it passed, forgets those past their grace.
fn advance(sym: &mut SymbolWindows, config: &WindowConfig, out: &mut Vec<Output>, spare: &mut Vec<Vec<(i64, u64)>>) {
    let watermark = sym.latest_t.saturating_sub(config.allowed_lateness_ms);
    close_open(sym, |w| w.end <= watermark, out);
    let past =
        sym.windows.iter().take_while(|w| w.closed && w.end.saturating_add(config.grace_ms) <= watermark).count();
    if past > 0 {
        if let Some(dv) = sym.windows[..past].iter().rev().find_map(|w| w.dv_last) {
            sym.finalized_dv = Some(dv);
        }
        for mut w in sym.windows.drain(..past) {
            // Kept for reuse, a few per symbol at most (see `SPARE`).
            if spare.len() < SPARE {
                w.seen.clear();
                spare.push(w.seen);
            }
        }
    }
    let next_close = sym.windows.iter().find(|w| !w.closed).map_or(i64::MAX, |w| w.end);
    let next_forget =
        sym.windows.first().filter(|w| w.closed).map_or(i64::MAX, |w| w.end.saturating_add(config.grace_ms));
    sym.due = next_close.min(next_forget);
}

fn close_open(sym: &mut SymbolWindows, due: impl Fn(&Acc) -> bool, out: &mut Vec<Output>) {
    sym.due = i64::MIN;
    for i in 0..sym.windows.len() {
        let w = &sym.windows[i];
        if !w.closed && due(w) {
            sym.windows[i].closed = true;
            out.push(Output::Closed(sym.bar(i)));
        }
    }
}

#[cfg(test)]
mod tests;
