//! The live stream, with a real WebSocket client against the real server: who may open it,
//! the events a dashboard sees (also when changes race its snapshot), the code rotation, and how
//! connections end.

mod access;
mod connections;
mod events;
mod races;
mod rotation;
