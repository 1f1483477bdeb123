/* apple_min.h — the Apple declarations bridge.m uses, and nothing else, so that it can be
 * syntax- and type-checked on Linux (.ci/bridge-check.sh: clang -fsyntax-only -x objective-c
 * -fobjc-arc -fobjc-runtime=macosx -include this file). Written from Apple's public
 * documentation of each function's C prototype; on a Mac bridge.m includes the real headers
 * instead (it skips them when AN_APPLE_MIN_H is defined). The Objective-C builtin types id,
 * Class and SEL need no declaration. Only what is declared here can be used by bridge.m: a new
 * Apple call fails the check until its prototype is added. */
#ifndef AN_APPLE_MIN_H
#define AN_APPLE_MIN_H

/* As the SDK's headers are: clang otherwise warns that objc_msgSend(void) redeclares its
 * builtin (id, SEL, ...), which the SDK does on purpose to force casts. */
#pragma clang system_header

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* <objc/objc.h>, <objc/runtime.h>, <objc/message.h> (arm64: BOOL is bool) */
typedef bool BOOL;
#define YES ((BOOL)1)
#define NO ((BOOL)0)
#define nil ((void *)0)
typedef unsigned long NSUInteger;
typedef long NSInteger;
#define NSNotFound ((NSInteger)0x7fffffffffffffffL)
void objc_msgSend(void); /* OBJC_OLD_DISPATCH_PROTOTYPES=0: every call must be cast */
SEL sel_registerName(const char *name);
Class objc_getClass(const char *name);
Class object_getClass(id obj);
BOOL class_respondsToSelector(Class cls, SEL sel);

/* <Foundation/NSPathUtilities.h> */
id NSTemporaryDirectory(void); /* NSString * */

/* <CoreFoundation/CoreFoundation.h> */
typedef const void *CFTypeRef;
typedef long CFIndex;
typedef const struct __CFAllocator *CFAllocatorRef;
typedef const struct __CFString *CFStringRef;
typedef const struct __CFNumber *CFNumberRef;
typedef const struct __CFDictionary *CFDictionaryRef;
typedef struct __CFDictionary *CFMutableDictionaryRef;
typedef CFIndex CFNumberType;
enum { kCFNumberSInt32Type = 3, kCFNumberSInt64Type = 4 };
typedef struct CFDictionaryKeyCallBacks CFDictionaryKeyCallBacks;
typedef struct CFDictionaryValueCallBacks CFDictionaryValueCallBacks;
extern const CFAllocatorRef kCFAllocatorDefault;
extern const CFDictionaryKeyCallBacks kCFTypeDictionaryKeyCallBacks;
extern const CFDictionaryValueCallBacks kCFTypeDictionaryValueCallBacks;
void CFRelease(CFTypeRef cf);
CFNumberRef CFNumberCreate(CFAllocatorRef allocator, CFNumberType theType, const void *valuePtr);
CFMutableDictionaryRef CFDictionaryCreateMutable(CFAllocatorRef allocator, CFIndex capacity,
                                                 const CFDictionaryKeyCallBacks *keyCallBacks,
                                                 const CFDictionaryValueCallBacks *valueCallBacks);
void CFDictionarySetValue(CFMutableDictionaryRef theDict, const void *key, const void *value);

/* <IOSurface/IOSurfaceRef.h> */
typedef int kern_return_t;
typedef struct __IOSurface *IOSurfaceRef;
typedef uint32_t IOSurfaceLockOptions;
enum { kIOSurfaceLockReadOnly = 0x00000001 };
extern const CFStringRef kIOSurfaceAllocSize;
extern const CFStringRef kIOSurfaceWidth;
extern const CFStringRef kIOSurfaceHeight;
extern const CFStringRef kIOSurfaceBytesPerRow;
extern const CFStringRef kIOSurfaceBytesPerElement;
extern const CFStringRef kIOSurfacePixelFormat;
IOSurfaceRef IOSurfaceCreate(CFDictionaryRef properties);
kern_return_t IOSurfaceLock(IOSurfaceRef buffer, IOSurfaceLockOptions options, uint32_t *seed);
kern_return_t IOSurfaceUnlock(IOSurfaceRef buffer, IOSurfaceLockOptions options, uint32_t *seed);
void *IOSurfaceGetBaseAddress(IOSurfaceRef buffer);
size_t IOSurfaceGetAllocSize(IOSurfaceRef buffer);
size_t IOSurfaceGetBytesPerRow(IOSurfaceRef buffer);

/* <sys/sysctl.h> (glibc no longer ships it) */
int sysctlbyname(const char *name, void *oldp, size_t *oldlenp, void *newp, size_t newlen);

#endif
