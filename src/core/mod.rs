//! The pure core: documents, selection, tag merging and retention. Nothing here knows about AWS
//! or Terraform; the runner and the provider are thin shells over it.

pub mod advice;
pub mod copy;
pub mod coverage;
pub mod coverage_page;
pub mod doc;
pub mod guide;
pub mod limits;
pub mod metrics;
pub mod migrate;
pub mod raise;
pub mod report;
pub mod restore;
pub mod restore_test;
pub mod retention;
pub mod schedule;
pub mod select;
pub mod tags;
pub mod ticket;
pub mod trust;
