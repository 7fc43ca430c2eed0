//! A local stand-in of the face person API, faithful to the contract.
