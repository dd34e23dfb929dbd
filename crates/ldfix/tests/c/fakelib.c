/* Stands in for a library no store path provides (its SONAME is chosen at build time). */
int fake_library_function(void) { return 7; }
