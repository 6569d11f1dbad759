//! Supabase client for Ruwād (to be written with issue #4): `realtime`, `rest`, `auth`.

pub mod auth;
pub mod realtime;
pub mod rest;
