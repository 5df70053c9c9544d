"""Where things are kept: files in storage (local or S3), Ray's folder, the driver's
record for --resume, saved state. May import the space and the core only."""
