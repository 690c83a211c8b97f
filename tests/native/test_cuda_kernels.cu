#include "skipgpt.h"
int main() { return 77; }
