//! Many-row writes on SQLite: one prepared statement, stepped once per row
//! on the connection's own handle, inside the caller's sqlx transaction.
//!
//! Through sqlx every bound value is first copied into an owned argument and
//! every statement is a round trip to the connection's worker thread; for
//! the tens of thousands of rows in a batch that cost more than the writes
//! themselves. Everything else in the store goes through sqlx.

use crate::StoreError;
use libsqlite3_sys as ffi;
use sqlx::sqlite::LockedSqliteHandle;
use std::ffi::{c_int, CStr};
use std::marker::PhantomData;
use std::ptr::{self, NonNull};

/// A value bound to a statement parameter.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Param<'a> {
    /// SQL NULL.
    Null,
    /// An integer.
    Int(i64),
    /// Text, copied by SQLite when bound.
    Text(&'a str),
}

impl<'a> From<&'a str> for Param<'a> {
    fn from(s: &'a str) -> Self {
        Param::Text(s)
    }
}

impl From<i64> for Param<'_> {
    fn from(v: i64) -> Self {
        Param::Int(v)
    }
}

impl<'a, T: Into<Param<'a>>> From<Option<T>> for Param<'a> {
    fn from(v: Option<T>) -> Self {
        v.map_or(Param::Null, Into::into)
    }
}

/// A prepared statement on a locked connection. The borrow of the handle
/// keeps sqlx's worker off the connection while the statement lives.
pub(crate) struct Statement<'h> {
    db: NonNull<ffi::sqlite3>,
    stmt: NonNull<ffi::sqlite3_stmt>,
    params: usize,
    _handle: PhantomData<&'h mut ()>,
}

/// The connection's last error as a store error.
fn error(db: NonNull<ffi::sqlite3>, code: c_int, doing: &str) -> StoreError {
    // SAFETY: `db` is a live connection; sqlite3_errmsg returns a
    // NUL-terminated string owned by it, copied out at once.
    let message = unsafe { CStr::from_ptr(ffi::sqlite3_errmsg(db.as_ptr())) }
        .to_string_lossy()
        .into_owned();
    StoreError::Sqlite {
        code,
        message: format!("{doing}: {message}"),
    }
}

impl<'h> Statement<'h> {
    /// Prepares one SQL statement.
    pub(crate) fn prepare(
        handle: &'h mut LockedSqliteHandle<'_>,
        sql: &str,
    ) -> Result<Self, StoreError> {
        Self::prepare_on(handle.as_raw_handle(), sql)
    }

    /// Prepares on `db`, the raw connection of a handle locked for 'h.
    fn prepare_on(db: NonNull<ffi::sqlite3>, sql: &str) -> Result<Self, StoreError> {
        let mut stmt = ptr::null_mut();
        let len = c_int::try_from(sql.len()).expect("statement text under 2 GiB");
        // SAFETY: the handle is locked for 'h; the SQL pointer and length
        // describe a live string; `stmt` receives the new statement.
        let rc = unsafe {
            ffi::sqlite3_prepare_v2(
                db.as_ptr(),
                sql.as_ptr().cast(),
                len,
                &mut stmt,
                ptr::null_mut(),
            )
        };
        if rc != ffi::SQLITE_OK {
            return Err(error(db, rc, "preparing a batch statement"));
        }
        let stmt = NonNull::new(stmt).expect("a non-empty statement");
        // SAFETY: `stmt` was just prepared.
        let params = unsafe { ffi::sqlite3_bind_parameter_count(stmt.as_ptr()) } as usize;
        Ok(Statement {
            db,
            stmt,
            params,
            _handle: PhantomData,
        })
    }

    /// Prepares several statements at once, to be used in turn on the
    /// same locked connection: each is reset after every use, so none is
    /// left running while another steps.
    pub(crate) fn prepare_all<const N: usize>(
        handle: &'h mut LockedSqliteHandle<'_>,
        sqls: [&str; N],
    ) -> Result<[Self; N], StoreError> {
        let db = handle.as_raw_handle();
        let mut out = Vec::with_capacity(N);
        for sql in sqls {
            out.push(Self::prepare_on(db, sql)?);
        }
        Ok(out
            .try_into()
            .unwrap_or_else(|_| unreachable!("one statement per text")))
    }

    /// Binds `params` to `?1`.. and runs the statement to completion.
    pub(crate) fn execute(&mut self, params: &[Param<'_>]) -> Result<(), StoreError> {
        match self.first_row::<0>(params)? {
            None => Ok(()),
            Some(_) => Err(StoreError::Sqlite {
                code: ffi::SQLITE_ROW,
                message: "a batch statement returned rows".into(),
            }),
        }
    }

    /// Binds `params` to `?1`.. and returns the first `N` columns of the
    /// first row, read as integers (NULL as 0), if there is a row.
    pub(crate) fn first_row<const N: usize>(
        &mut self,
        params: &[Param<'_>],
    ) -> Result<Option<[i64; N]>, StoreError> {
        let s = self.stmt.as_ptr();
        if let Err(e) = self.bind(params) {
            // SAFETY: drops pointers into `params` bound before the failure.
            unsafe { ffi::sqlite3_clear_bindings(s) };
            return Err(e);
        }
        // SAFETY: `s` is prepared with every parameter bound; the columns
        // are read while the row is current; reset makes the statement
        // ready for the next use whatever the outcome, and clearing the
        // bindings drops the pointers into `params` before they go.
        unsafe {
            let rc = ffi::sqlite3_step(s);
            let row = (rc == ffi::SQLITE_ROW)
                .then(|| std::array::from_fn(|i| ffi::sqlite3_column_int64(s, i as c_int)));
            ffi::sqlite3_reset(s);
            ffi::sqlite3_clear_bindings(s);
            match rc {
                ffi::SQLITE_ROW | ffi::SQLITE_DONE => Ok(row),
                _ => Err(error(self.db, rc, "running a batch statement")),
            }
        }
    }

    fn bind(&mut self, params: &[Param<'_>]) -> Result<(), StoreError> {
        assert_eq!(params.len(), self.params, "one value per parameter");
        let s = self.stmt.as_ptr();
        for (i, p) in params.iter().enumerate() {
            let at = i as c_int + 1;
            // SAFETY: `s` is a prepared statement and `at` is in range.
            // Text is bound in place (SQLITE_STATIC), not copied: it lives
            // for this call, and the bindings are cleared before it returns.
            let rc = unsafe {
                match *p {
                    Param::Null => ffi::sqlite3_bind_null(s, at),
                    Param::Int(v) => ffi::sqlite3_bind_int64(s, at, v),
                    Param::Text(t) => ffi::sqlite3_bind_text(
                        s,
                        at,
                        t.as_ptr().cast(),
                        c_int::try_from(t.len()).expect("value under 2 GiB"),
                        ffi::SQLITE_STATIC(),
                    ),
                }
            };
            if rc != ffi::SQLITE_OK {
                return Err(error(self.db, rc, "binding a value"));
            }
        }
        Ok(())
    }
}

impl Drop for Statement<'_> {
    fn drop(&mut self) {
        // SAFETY: the statement is finalised once, here, while the
        // connection is still locked.
        unsafe {
            ffi::sqlite3_finalize(self.stmt.as_ptr());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::{Connection, SqliteConnection};

    /// An in-memory database holding one table.
    async fn with_table(ddl: &str) -> SqliteConnection {
        let mut conn = SqliteConnection::connect("sqlite::memory:").await.unwrap();
        sqlx::query(ddl).execute(&mut conn).await.unwrap();
        conn
    }

    #[tokio::test]
    async fn rows_written_through_the_handle_are_in_the_transaction() {
        let mut conn = with_table("CREATE TABLE t (a TEXT, b INTEGER)").await;
        let mut tx = conn.begin().await.unwrap();
        {
            let mut h = tx.lock_handle().await.unwrap();
            let mut s = Statement::prepare(&mut h, "INSERT INTO t (a, b) VALUES (?1, ?2)").unwrap();
            s.execute(&[Param::Text("x'\"y"), Param::Int(-7)]).unwrap();
            s.execute(&[Param::Null, Param::from(Some(3i64))]).unwrap();
            drop(s);
            // A bad statement comes back as an error naming the step.
            assert!(Statement::prepare(&mut h, "INSERT INTO nowhere VALUES (1)")
                .err()
                .unwrap()
                .to_string()
                .contains("no such table: nowhere"));
        }
        {
            let mut h = tx.lock_handle().await.unwrap();
            let mut s =
                Statement::prepare(&mut h, "SELECT b, b * 2, a FROM t WHERE b < ?1").unwrap();
            assert_eq!(s.first_row::<2>(&[Param::Int(0)]).unwrap(), Some([-7, -14]));
            assert_eq!(s.first_row::<2>(&[Param::Int(-7)]).unwrap(), None);
            assert!(
                s.execute(&[Param::Int(0)]).is_err(),
                "execute refuses a query"
            );
        }
        tx.commit().await.unwrap();
        let rows: Vec<(Option<String>, i64)> = sqlx::query_as("SELECT a, b FROM t ORDER BY b")
            .fetch_all(&mut conn)
            .await
            .unwrap();
        assert_eq!(rows, vec![(Some("x'\"y".into()), -7), (None, 3)]);
    }

    #[tokio::test]
    async fn statements_prepared_together_take_turns() {
        let mut conn = with_table("CREATE TABLE t (a INTEGER PRIMARY KEY, b TEXT)").await;
        let mut h = conn.lock_handle().await.unwrap();
        let [mut insert, mut read, mut update] = Statement::prepare_all(
            &mut h,
            [
                "INSERT INTO t (a, b) VALUES (?1, ?2)",
                "SELECT a, length(b) FROM t WHERE a = ?1",
                "UPDATE t SET b = b || ?2 WHERE a = ?1",
            ],
        )
        .unwrap();
        insert.execute(&[Param::Int(1), Param::Text("ab")]).unwrap();
        assert_eq!(read.first_row::<2>(&[Param::Int(1)]).unwrap(), Some([1, 2]));
        update
            .execute(&[Param::Int(1), Param::Text("cde")])
            .unwrap();
        insert.execute(&[Param::Int(2), Param::Text("")]).unwrap();
        assert_eq!(read.first_row::<2>(&[Param::Int(1)]).unwrap(), Some([1, 5]));
        assert_eq!(read.first_row::<2>(&[Param::Int(2)]).unwrap(), Some([2, 0]));
        assert_eq!(read.first_row::<2>(&[Param::Int(3)]).unwrap(), None);
        // A bad statement among them fails the whole preparation.
        drop((insert, read, update));
        assert!(Statement::prepare_all(&mut h, ["SELECT 1", "SELECT * FROM nowhere"]).is_err());
    }

    #[tokio::test]
    async fn a_constraint_failure_is_an_error_and_the_statement_goes_on() {
        let mut conn = with_table("CREATE TABLE t (a INTEGER PRIMARY KEY)").await;
        let mut h = conn.lock_handle().await.unwrap();
        let mut s = Statement::prepare(&mut h, "INSERT INTO t (a) VALUES (?1)").unwrap();
        s.execute(&[Param::Int(1)]).unwrap();
        let e = s.execute(&[Param::Int(1)]).unwrap_err().to_string();
        assert!(e.contains("UNIQUE constraint failed: t.a"), "{e}");
        s.execute(&[Param::Int(2)]).unwrap();
    }
}
