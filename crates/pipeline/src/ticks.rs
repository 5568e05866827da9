//! The tick stage: bus → decode → check → event-time windows → closed bars to
//! the store (and the analytics stage), forming bars to the live view; run by
//! the one driver (`driver.rs`) as the bar stage is. Its rules, beside the
//! driver's:
//! - an offset is committed no further than the earliest tick of a window
//!   still held, so a restarted consumer reads every tick of the windows it
//!   must rebuild;
//! - with each batch of bars, each symbol's standing (watermark, day volume,
//!   last offset read) is kept in the store before the commit: ticks read
//!   again whose windows were already retired are skipped, and the rebuilt
//!   windows equal those of a run that never stopped;
//! - the windows are flushed (every open one closed and stored) only when the
//!   input ends, never on a stop: a stopped consumer's successor rebuilds them.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};
use stockstream_core::RejectKind;

use stockstream_bus::{Consumer, Message, Position};
use stockstream_core::fetched::{decode_fetched, is_fetched};
use stockstream_core::{canonical_symbol, company_for_symbol, Bar, FetchedBar, Refusal, Tick, Ts, WindowMark};
use stockstream_store::Store;
use stockstream_window::{session_date, BarLength, Output, Verdict, WindowBar, WindowConfig, Windows};

use crate::driver::{Batch, Stage};
use crate::{AnalyticsStage, PipelineError, RetryPolicy};

/// How ticks become bars.
#[derive(Debug, Clone, Copy)]
pub struct TickOptions {
    /// Window length, lateness and grace.
    pub window: WindowConfig,
    /// A symbol without a tick for this long (wall time) has its open window closed.
    pub idle_close: Duration,
    /// Symbols held at most: a tick of one more is refused (`too_many_symbols`).
    pub max_symbols: usize,
}

impl TickOptions {
    /// Bars of this length with the defaults: 5 s of lateness, 1 min of grace,
    /// idle closing after one bar's length.
    pub fn new(length: BarLength) -> Self {
        TickOptions {
            window: WindowConfig { length, allowed_lateness_ms: 5_000, grace_ms: 60_000 },
            idle_close: Duration::from_millis(length.millis() as u64),
            max_symbols: 100_000,
        }
    }
}

/// Spellings of a symbol held at most per symbol held (`AAPL`, `aapl`, `Apple`, …).
const ALIASES_PER_SYMBOL: usize = 4;

/// What the loop knows of a symbol it has read.
struct SymbolState {
    name: Arc<str>,
    partition: i32,
    /// The newest offset read of it.
    last_offset: i64,
    /// Offsets up to this one were read before a restart: a late verdict
    /// for one of them is no news (it was kept then, or counted).
    replayed_through: i64,
    /// Read since the last batch was cut.
    touched: bool,
}

/// Windows and what is needed to commit and resume them.
pub(crate) struct TickStage {
    windows: Windows,
    symbols: HashMap<Arc<str>, SymbolState>,
    /// Symbols as ticks spell them → the one symbol of the instrument
    /// (`aapl`, `Aapl`, `Apple` → `AAPL`): one window per instrument, so two
    /// windows never write one row.
    aliases: HashMap<Arc<str>, Arc<str>>,
    /// Per partition: the newest offset read.
    read: HashMap<i32, i64>,
    length: BarLength,
    max_symbols: usize,
    idle_close: Duration,
    idle_checked: Instant,
    out: Vec<Output>,
    /// Where each symbol's windows stood is kept here and read back after a
    /// restart (None: a live view's follower, which keeps nothing).
    store: Option<Arc<dyn Store>>,
    retry: RetryPolicy,
    /// Forming bars go to its subscribers at once.
    analytics: Option<Arc<AnalyticsStage>>,
    /// Per symbol, the windows whose bar was fetched whole (the latest
    /// few): the windows' own bars of them, made of the part the feed saw,
    /// are dropped.
    settled: HashMap<String, VecDeque<i64>>,
    /// Fetched bars of another length than the windows' (`1m` history of
    /// `1s` bars), written to their own table before the next cut.
    elsewhere: Vec<FetchedBar>,
    /// The batch holds a bar the windows closed: it is written at once (a
    /// live view waits for it); fetched history is batched as bars are.
    closed_waiting: bool,
}

/// Fetched windows remembered per symbol: those a late tick may still revise.
const SETTLED_PER_SYMBOL: usize = 16;

impl TickStage {
    pub(crate) fn new(
        options: TickOptions,
        store: Option<Arc<dyn Store>>,
        retry: RetryPolicy,
        analytics: Option<Arc<AnalyticsStage>>,
    ) -> Self {
        TickStage {
            windows: Windows::new(options.window),
            symbols: HashMap::new(),
            aliases: HashMap::new(),
            read: HashMap::new(),
            length: options.window.length,
            max_symbols: options.max_symbols,
            idle_close: options.idle_close,
            idle_checked: Instant::now(),
            out: Vec::new(),
            store,
            retry,
            analytics,
            settled: HashMap::new(),
            elsewhere: Vec::new(),
            closed_waiting: false,
        }
    }

    /// Takes a fetched bar: one of the windows' length goes to `batch` and
    /// settles its window; another is kept for its own table.
    fn take_fetched(&mut self, bytes: &[u8], batch: &mut Batch) -> Option<Refusal> {
        let fetched = match decode_fetched(bytes) {
            Ok(f) => f,
            Err(refusal) => return Some(refusal),
        };
        if fetched.length != self.length {
            self.elsewhere.push(fetched);
            return None;
        }
        let symbol = canonical_symbol(&fetched.bar.symbol);
        // Bounded with the symbols; past them a bar is stored, not remembered.
        if self.settled.len() < self.max_symbols || self.settled.contains_key(&symbol) {
            let starts = self.settled.entry(symbol).or_default();
            if starts.len() >= SETTLED_PER_SYMBOL {
                starts.pop_front();
            }
            starts.push_back(fetched.start_ms());
        }
        batch.bars.push(fetched.bar);
        batch.sent_at.push(None);
        None
    }

    /// Takes one tick in: the bars it closed or revised go to `batch`;
    /// returns the forming bar it changed, if any, or why it was refused. Only
    /// the store failing to say where a symbol stood is an error.
    async fn take_tick(
        &mut self,
        m: &Message,
        bytes: &[u8],
        batch: &mut Batch,
        now_ms: i64,
    ) -> Result<Result<Option<WindowBar>, Refusal>, PipelineError> {
        let mut tick = match Tick::decode(bytes).and_then(|t| t.check(now_ms).map(|()| t)) {
            Ok(tick) => tick,
            Err(refusal) => return Ok(Err(refusal)),
        };
        let name = match self.aliases.get(&tick.symbol) {
            Some(name) => name.clone(),
            None => {
                // Bounded with the symbols: a few spellings each.
                if self.aliases.len() >= ALIASES_PER_SYMBOL * self.max_symbols {
                    return Ok(Err(Refusal::new(
                        RejectKind::TooManySymbols,
                        format!("{}: {} spellings of symbols are held already", tick.symbol, self.aliases.len()),
                    )));
                }
                let one: Arc<str> = Arc::from(canonical_symbol(&tick.symbol));
                let one = self.symbols.get_key_value(&one).map_or(one, |(known, _)| known.clone());
                self.aliases.insert(tick.symbol.clone(), one.clone());
                one
            }
        };
        if !self.symbols.contains_key(&name) {
            if self.symbols.len() >= self.max_symbols {
                return Ok(Err(Refusal::new(
                    RejectKind::TooManySymbols,
                    format!("{name}: {} symbols are held already", self.max_symbols),
                )));
            }
            // Where an earlier consumer left this symbol, if one did.
            let mark = match &self.store {
                Some(store) => self.retry.run("reading a window mark", || store.mark(&name)).await?,
                None => None,
            };
            let replayed_through = match &mark {
                Some(mark) => {
                    self.windows.resume(&name, mark.watermark_ms, mark.day_volume);
                    mark.last_offset
                }
                None => -1,
            };
            let state = SymbolState {
                name: name.clone(),
                partition: m.position.partition,
                last_offset: m.position.offset,
                replayed_through,
                touched: true,
            };
            self.symbols.insert(name.clone(), state);
        }
        let state = self.symbols.get_mut(&name).expect("inserted above");
        // One shared name per symbol: the windows find it by pointer.
        tick.symbol = state.name.clone();
        Ok(self.count(tick, m.position, m.sent_at_micros, batch))
    }

    fn count(
        &mut self,
        tick: Tick,
        pos: Position,
        sent_at: Option<i64>,
        batch: &mut Batch,
    ) -> Result<Option<WindowBar>, Refusal> {
        let state = self.symbols.get_mut(&tick.symbol).expect("a known symbol");
        state.last_offset = state.last_offset.max(pos.offset);
        state.partition = pos.partition;
        state.touched = true;
        let replayed = pos.offset <= state.replayed_through;
        let verdict = self.windows.push_at(&tick, pos.offset, &mut self.out);
        batch.closed_by.extend(self.out.iter().filter_map(|_| sent_at));
        self.closed_into(batch);
        match verdict.reject_kind() {
            Some(_) if replayed => Ok(None),
            Some(kind) => Err(Refusal::new(
                kind,
                format!(
                    "{} at {}: {}",
                    tick.symbol,
                    stockstream_core::tick::time_text::format(tick.time_ms),
                    match verdict {
                        Verdict::Late => "its window is past the grace period",
                        _ => "outside the exchange's regular session",
                    }
                ),
            )),
            None if verdict == Verdict::Duplicate => Ok(None),
            None => Ok(self.windows.bar_at(&tick.symbol, tick.time_ms).filter(|b| b.partial)),
        }
    }

    /// Moves the bars the windows closed or revised into `batch`, but for
    /// those of windows fetched whole.
    fn closed_into(&mut self, batch: &mut Batch) {
        for o in self.out.drain(..) {
            let w = o.bar();
            if self.settled.get(&*w.symbol).is_some_and(|starts| starts.contains(&w.start_ms)) {
                continue;
            }
            batch.bars.push(bar_of(w, self.length));
            self.closed_waiting = true;
            batch.sent_at.push(None);
        }
    }

    /// The marks of the symbols read since the last cut, and the offsets that
    /// may be committed: per partition, up to the earliest tick of a window
    /// still held, or everything read when none is.
    fn cut_here(&mut self) -> (Vec<WindowMark>, Vec<Position>) {
        let mut marks = Vec::new();
        let mut commit: HashMap<i32, i64> = self.read.iter().map(|(p, o)| (*p, *o)).collect();
        for state in self.symbols.values_mut() {
            let Some(standing) = self.windows.standing(&state.name) else { continue };
            if let Some(oldest) = standing.oldest_pos {
                let c = commit.entry(state.partition).or_insert(oldest - 1);
                *c = (*c).min(oldest - 1);
            }
            if std::mem::take(&mut state.touched) && self.store.is_some() {
                marks.push(WindowMark {
                    symbol: state.name.to_string(),
                    watermark_ms: standing.watermark_ms,
                    day_volume: standing.day_volume,
                    partition: state.partition,
                    last_offset: state.last_offset.max(state.replayed_through),
                });
            }
        }
        let positions = commit
            .into_iter()
            .filter(|(_, o)| *o >= 0)
            .map(|(partition, offset)| Position { partition, offset })
            .collect();
        (marks, positions)
    }

    /// Forgets the symbols of partitions this member no longer owns: their
    /// new owner rebuilds them from the committed offsets.
    fn drop_revoked(&mut self, consumer: &dyn Consumer) {
        let revoked: Vec<i32> = self.read.keys().copied().filter(|p| !consumer.owns(*p)).collect();
        if revoked.is_empty() {
            return;
        }
        tracing::info!(?revoked, "partitions moved to another member: their windows are left to it");
        for p in &revoked {
            self.read.remove(p);
        }
        let windows = &mut self.windows;
        self.symbols.retain(|_, s| {
            let keep = !revoked.contains(&s.partition);
            if !keep {
                windows.forget(&s.name);
            }
            keep
        });
        let symbols = &self.symbols;
        self.aliases.retain(|_, one| symbols.contains_key(one));
    }
}

impl Stage for TickStage {
    async fn take(&mut self, m: &Message, batch: &mut Batch) -> Result<Option<Refusal>, PipelineError> {
        let read = self.read.entry(m.position.partition).or_insert(m.position.offset);
        *read = (*read).max(m.position.offset);
        let bytes = m.wire_bytes();
        if is_fetched(&bytes) {
            return Ok(self.take_fetched(&bytes, batch));
        }
        let now_ms = chrono::Utc::now().timestamp_millis();
        Ok(match self.take_tick(m, &bytes, batch, now_ms).await? {
            // Handed on at once: a live view waits for it.
            Ok(Some(bar)) => {
                if let Some(analytics) = &self.analytics {
                    analytics.forming(&bar_of(&bar, self.length), m.sent_at_micros);
                }
                None
            }
            Ok(None) => None,
            Err(refusal) => Some(refusal),
        })
    }

    /// Quiet symbols: their open windows close on wall time. Fetched bars
    /// of another length are written to their table here, before the cut
    /// that commits past them.
    async fn on_pass(&mut self, batch: &mut Batch) -> Result<(), PipelineError> {
        if !self.elsewhere.is_empty() {
            let fetched = std::mem::take(&mut self.elsewhere);
            if let Some(store) = &self.store {
                let mut by_length: Vec<(BarLength, Vec<Bar>)> = Vec::new();
                for f in fetched {
                    match by_length.iter_mut().find(|(l, _)| *l == f.length) {
                        Some((_, bars)) => bars.push(f.bar),
                        None => by_length.push((f.length, vec![f.bar])),
                    }
                }
                for (length, bars) in by_length {
                    let name = length.name();
                    let table = self.retry.run("opening a table", || store.interval(&name)).await?;
                    let bars: Arc<[Bar]> = bars.into();
                    self.retry.run("storing fetched bars", || table.upsert(bars.clone())).await?;
                }
            }
        }
        if self.idle_checked.elapsed() >= Duration::from_millis(500) {
            self.idle_checked = Instant::now();
            self.windows.close_idle(self.idle_checked, self.idle_close, &mut self.out);
            self.closed_into(batch);
        }
        Ok(())
    }

    /// A closed bar is written at once: it is what a live view waits for.
    fn writes_at_once(&self) -> bool {
        self.closed_waiting
    }

    fn cut(&mut self, consumer: &dyn Consumer, _read: &HashMap<i32, i64>) -> (Vec<WindowMark>, Vec<Position>) {
        self.closed_waiting = false;
        self.drop_revoked(consumer);
        self.cut_here()
    }

    /// The input ended: every open window closes and is stored.
    fn flush(&mut self, batch: &mut Batch) {
        self.windows.flush(&mut self.out);
        self.closed_into(batch);
    }
}

/// A window's bar as the store keeps it: the company for the symbol, the
/// window's start (or its session's date for daily bars) as its time.
pub fn bar_of(w: &WindowBar, length: BarLength) -> Bar {
    let ts = match (length, session_date(w.start_ms)) {
        (BarLength::Day, Some(date)) => Ts::Date(date),
        _ => Ts::Instant(chrono::DateTime::from_timestamp_millis(w.start_ms).unwrap_or_default()),
    };
    Bar {
        company: company_for_symbol(&w.symbol),
        symbol: w.symbol.to_string(),
        ts,
        open: w.open,
        high: w.high,
        low: w.low,
        close: w.close,
        volume: w.volume,
        vwap: w.vwap,
        trades: Some(u64::from(w.ticks)),
    }
}
