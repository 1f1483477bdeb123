#include "anelm.h"
int main(void) { return 0; }
