/* Needs the fake library: on the test system nothing provides it. */
int fake_library_function(void);
int main(void) { return fake_library_function() == 7 ? 0 : 1; }
