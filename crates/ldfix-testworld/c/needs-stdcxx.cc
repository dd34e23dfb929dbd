// FHS fixture: needs libstdc++.so.6 (and libgcc_s.so.1 for the exception).
#include <iostream>
#include <stdexcept>
#include <string>

int main() {
    try {
        throw std::runtime_error(std::string("ldfix"));
    } catch (const std::exception &e) {
        std::cout << "stdc++ " << e.what() << " ok" << std::endl;
    }
    return 0;
}
