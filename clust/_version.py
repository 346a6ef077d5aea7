"""The package version (a leaf module: the client's User-Agent reads it, and the
package root re-exports it, without the two importing each other)."""

__version__ = "0.1.0"
