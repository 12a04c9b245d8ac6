//! The one integration-test binary (cargo's layout): every test drives the library
//! in-process or spawns the real binary against servers on 127.0.0.1 only.

mod answers;
mod browser;
mod chart_labels;
mod check;
mod cli;
mod compare;
mod deploy;
mod docs;
mod door;
mod golden;
mod guard;
mod h2_nginx;
mod html;
mod journeys;
mod keepalive;
mod landing;
mod layout;
mod load;
mod mock;
mod mtls;
mod native;
mod overload;
mod probe;
mod protocol;
mod reasons;
mod secrets;
mod segments;
mod serve;
mod serve_pace;
mod stack;
mod support;
mod timeline;
mod tls;
mod tls_errors;
mod usage;
