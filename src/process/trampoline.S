/*
 * ferry's exec trampoline: x86-64 Linux, static, no libc, no data writes.
 * See src/process/trampoline.rs for why it exists (CVE-2019-5736).
 *
 * ferry runs it from a sealed memfd as
 *     execveat(memfd, "", [PATH, ARGV0, ARGV1, ...], ENVP, AT_EMPTY_PATH)
 * and it does
 *     execve(PATH, [ARGV0, ARGV1, ...], ENVP)
 * so that while the container's program is being resolved (its PT_INTERP,
 * a "#!" interpreter, "/proc/self/exe") the process's executable is this
 * memfd, never ferry's binary on the host.
 *
 * On failure it writes "ferry: exec PATH: ENAME: Message\n" to fd 2 (the
 * wording of nix's Errno, which ferry itself used before) and exits 127 for
 * ENOENT, 126 otherwise. Started with fewer than two arguments (which
 * ferry never does: it only happens when a container re-executes
 * /proc/self/exe while it is the trampoline) it says so and exits 127.
 *
 * Syscalls used: execve, write, exit_group; all registers it relies on
 * after a syscall are callee-saved across `syscall` (rcx and r11 are not).
 */

#define SYS_write       1
#define SYS_execve      59
#define SYS_exit_group  231
#define ENOENT          2

        .text
        .globl  _start
_start:
        mov     (%rsp), %rcx            /* argc */
        cmp     $2, %rcx
        jb      no_program
        mov     8(%rsp), %rdi           /* PATH = argv[0] */
        lea     16(%rsp), %rsi          /* &argv[1] */
        lea     16(%rsp,%rcx,8), %rdx   /* envp = &argv[argc + 1] */
        mov     $SYS_execve, %eax
        syscall
        /* Still here: execve failed with rax = -errno. */
        neg     %rax
        mov     %rax, %r12              /* errno */
        mov     8(%rsp), %r13           /* PATH */

        lea     msg_exec(%rip), %rsi
        mov     $msg_exec_len, %edx
        call    write_err
        mov     %r13, %rsi              /* the path, up to its NUL */
        xor     %edx, %edx
1:      cmpb    $0, (%rsi,%rdx)
        je      2f
        inc     %rdx
        jmp     1b
2:      call    write_err
        lea     msg_colon(%rip), %rsi
        mov     $2, %edx
        call    write_err

        /* Find errno in the table: entries are (errno, length, text). */
        lea     errors(%rip), %rsi
3:      movzbl  (%rsi), %eax
        movzbl  1(%rsi), %edx
        test    %edx, %edx              /* end of table: generic text */
        jz      4f
        cmp     %r12, %rax
        je      4f
        lea     2(%rsi,%rdx), %rsi
        jmp     3b
4:      add     $2, %rsi
        test    %edx, %edx
        jnz     5f
        lea     msg_unknown(%rip), %rsi
        mov     $msg_unknown_len, %edx
5:      call    write_err
        lea     msg_nl(%rip), %rsi
        mov     $1, %edx
        call    write_err

        mov     $126, %edi
        mov     $127, %eax
        cmp     $ENOENT, %r12
        cmove   %eax, %edi
        jmp     exit

no_program:
        lea     msg_none(%rip), %rsi
        mov     $msg_none_len, %edx
        call    write_err
        mov     $127, %edi
exit:
        mov     $SYS_exit_group, %eax
        syscall
        hlt

/* write(2, rsi, rdx); best effort, the result is ignored. */
write_err:
        mov     $SYS_write, %eax
        mov     $2, %edi
        syscall
        ret

        .section .rodata
msg_exec:       .ascii  "ferry: exec "
        .set    msg_exec_len, . - msg_exec
msg_colon:      .ascii  ": "
msg_nl:         .ascii  "\n"
msg_none:       .ascii  "ferry: exec: the trampoline was started without a program\n"
        .set    msg_none_len, . - msg_none
msg_unknown:    .ascii  "exec failed"
        .set    msg_unknown_len, . - msg_unknown

#define ERR(num, text) .byte num, 9f - 8f; 8: .ascii text; 9:
errors:
        ERR(1,  "EPERM: Operation not permitted")
        ERR(2,  "ENOENT: No such file or directory")
        ERR(5,  "EIO: I/O error")
        ERR(7,  "E2BIG: Argument list too long")
        ERR(8,  "ENOEXEC: Exec format error")
        ERR(12, "ENOMEM: Cannot allocate memory")
        ERR(13, "EACCES: Permission denied")
        ERR(14, "EFAULT: Bad address")
        ERR(20, "ENOTDIR: Not a directory")
        ERR(21, "EISDIR: Is a directory")
        ERR(22, "EINVAL: Invalid argument")
        ERR(24, "EMFILE: Too many open files")
        ERR(26, "ETXTBSY: Text file busy")
        ERR(36, "ENAMETOOLONG: File name too long")
        ERR(40, "ELOOP: Too many levels of symbolic links")
        .byte   0, 0

        .section .note.GNU-stack, "", @progbits
