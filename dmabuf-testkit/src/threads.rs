// SPDX-License-Identifier: GPL-2.0
//! Joining the threads of a test: a thread that panicked fails the check it
//! belongs to, named, with its panic message, instead of being ignored or
//! taking the whole run down.

use std::any::Any;

/// The message a panic was raised with (`panic!("...")`, `expect()`,
/// `unwrap()` on an `Err`), or a note that it had none.
pub fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(a panic without a message)".to_string()
    }
}

/// What `handle.join()` returned, with a panic described as `WHO panicked:
/// MESSAGE`. Works for `std::thread::JoinHandle` and `ScopedJoinHandle`:
/// `joined("writer 3", h.join())`.
pub fn joined<T>(who: &str, result: std::thread::Result<T>) -> Result<T, String> {
    result.map_err(|payload| format!("{who} panicked: {}", panic_message(&*payload)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::thread;

    /// Runs `f` in a thread with the panic hook silenced, and joins it.
    fn join_quietly<T: Send>(f: impl FnOnce() -> T + Send) -> Result<T, String> {
        thread::scope(|s| joined("thread 7", s.spawn(f).join()))
    }

    #[test]
    fn a_panic_is_named_with_its_message() {
        let hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        let r = join_quietly(|| -> u32 { panic!("buffer {} made twice", 3) });
        let s = join_quietly(|| -> u32 { panic!("a literal") });
        let failing = |fd: i32| -> Result<u32, &str> {
            if fd < 0 {
                Err("no such fd")
            } else {
                Ok(1)
            }
        };
        let u = join_quietly(move || -> u32 { failing(-1).unwrap() });
        let o = join_quietly(|| std::panic::panic_any(42u8));
        std::panic::set_hook(hook);
        assert_eq!(r, Err("thread 7 panicked: buffer 3 made twice".into()));
        assert_eq!(s, Err("thread 7 panicked: a literal".into()));
        assert_eq!(
            u,
            Err(
                "thread 7 panicked: called `Result::unwrap()` on an `Err` value: \"no such fd\""
                    .into()
            )
        );
        let o: Result<(), String> = o;
        assert_eq!(
            o,
            Err("thread 7 panicked: (a panic without a message)".into())
        );
    }

    #[test]
    fn a_thread_that_returned_gives_its_value() {
        assert_eq!(join_quietly(|| 5), Ok(5));
    }
}
