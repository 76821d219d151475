"""The active controller: metadata changes decided against the image, and its RPC."""
