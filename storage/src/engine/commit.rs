//! The commit thread: group commit of the WAL, then the head.
//!
//! Writers send a [`Commit`] and wait. The thread takes every command already queued,
//! appends their records to the current segment in one write, fsyncs once (when the
//! WAL sync mode says so), appends the samples to the head and answers them all. Because
//! the head is only changed here, a [`Command::Rotate`] sees a head that holds exactly
//! the samples of every segment before the new one: the marks it returns (how many
//! samples each series holds then) say what a flush must write before deleting those
//! segments.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Instant;

use crossbeam_channel::{Receiver, Sender};

use crate::block::Sample;
use crate::error::StorageError;
use crate::head::{Head, HeadMarks};
use crate::wal::{self, SegmentWriter};

/// Most commands taken into one group commit.
const MAX_BATCH: usize = 512;

/// What a rotation answers: the first segment number that must be kept, and a copy of
/// the head (series ID, samples in arrival order).
pub(crate) type RotateResult = Result<(u64, HeadMarks), StorageError>;

/// One write to make durable and visible.
pub(crate) struct Commit {
    /// New (or not yet durable) series: ID and canonical key, logged before the samples.
    pub(crate) series: Vec<(u64, Vec<u8>)>,
    /// The samples, series by series.
    pub(crate) samples: SampleRuns,
    /// Flags set once the series records above are durable.
    pub(crate) durable: Vec<Arc<AtomicBool>>,
    /// Answered after the WAL write (and fsync) and the head append.
    pub(crate) done: tokio::sync::oneshot::Sender<Result<(), String>>,
}

/// The samples of one write in one vector: `runs` lists (series ID, number of samples)
/// in order, `samples` holds the runs one after the other.
pub(crate) struct SampleRuns {
    /// (series ID, number of samples) per series, in the order of `samples`.
    pub(crate) runs: Vec<(u64, usize)>,
    /// Every sample of the write; its length is the sum of the counts in `runs`.
    pub(crate) samples: Vec<Sample>,
}

/// Commands of the commit thread.
pub(crate) enum Command {
    /// Log and apply a write.
    Commit(Commit),
    /// Start a new segment and copy the head (for a flush).
    Rotate(Sender<RotateResult>),
}

/// Starts the commit thread. It ends when every sender of `rx` is dropped.
pub(crate) fn spawn(
    writer: SegmentWriter,
    head: Arc<Head>,
    sync: bool,
    rx: Receiver<Command>,
) -> Result<JoinHandle<()>, StorageError> {
    let mut state = CommitThread {
        writer,
        head,
        sync,
        broken: None,
        buf: Vec::new(),
    };
    std::thread::Builder::new()
        .name("cairn-wal-commit".into())
        .spawn(move || state.run(rx))
        .map_err(|e| StorageError::io("start the WAL commit thread", e))
}

struct CommitThread {
    writer: SegmentWriter,
    head: Arc<Head>,
    sync: bool,
    /// Set after a failed write: the segment may hold a torn record, so no further write
    /// is acknowledged.
    broken: Option<String>,
    buf: Vec<u8>,
}

impl CommitThread {
    fn run(&mut self, rx: Receiver<Command>) {
        while let Ok(first) = rx.recv() {
            let mut cmds = vec![first];
            while cmds.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(c) => cmds.push(c),
                    Err(_) => break,
                }
            }
            let mut batch = Vec::new();
            for c in cmds {
                match c {
                    Command::Commit(c) => batch.push(c),
                    Command::Rotate(reply) => {
                        self.commit(std::mem::take(&mut batch));
                        let _ = reply.send(self.rotate());
                    }
                }
            }
            self.commit(batch);
        }
        if let Err(e) = self.writer.append(&[], true) {
            tracing::warn!(error = %e, "final WAL fsync failed");
        }
    }

    fn rotate(&mut self) -> RotateResult {
        if let Some(b) = &self.broken {
            return Err(StorageError::WalClosed(b.clone()));
        }
        let next = self.writer.rotate()?;
        Ok((next, self.head.marks()))
    }

    fn commit(&mut self, batch: Vec<Commit>) {
        if batch.is_empty() {
            return;
        }
        if let Some(b) = &self.broken {
            for c in batch {
                let _ = c.done.send(Err(b.clone()));
            }
            return;
        }
        self.buf.clear();
        for c in &batch {
            for (id, key) in &c.series {
                wal::encode_series(&mut self.buf, *id, key);
            }
            if !c.samples.runs.is_empty() {
                wal::encode_samples(&mut self.buf, &c.samples.runs, &c.samples.samples);
            }
        }
        let started = Instant::now();
        let result = self.writer.append(&self.buf, self.sync);
        if self.sync {
            metrics::histogram!("cairn_storage_wal_fsync_seconds").record(started.elapsed().as_secs_f64());
        }
        metrics::counter!("cairn_storage_wal_bytes_written_total").increment(self.buf.len() as u64);
        metrics::histogram!("cairn_storage_wal_batch_writes").record(batch.len() as f64);
        if let Err(e) = result {
            tracing::error!(error = %e, "WAL write failed; refusing further writes");
            let msg = e.to_string();
            self.broken = Some(msg.clone());
            for c in batch {
                let _ = c.done.send(Err(msg.clone()));
            }
            return;
        }
        for c in batch {
            self.head.append_runs(&c.samples.runs, &c.samples.samples);
            for d in &c.durable {
                d.store(true, Ordering::Release);
            }
            let _ = c.done.send(Ok(()));
        }
        metrics::gauge!("cairn_storage_active_series").set(self.head.series_count() as f64);
    }
}
