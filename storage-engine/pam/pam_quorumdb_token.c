/*
 * pam_quorumdb_token: hand the password PostgreSQL received (a ServiceAccount token) to a checker program
 * on its standard input, and admit the login only if the checker exits 0.
 *
 * Why not pam_exec: it truncates the password to PAM_MAX_RESP_SIZE (512 bytes) before the program sees
 * it, and a Kubernetes token is a JSON Web Token of a kilobyte or more; the truncated token is refused.
 * This module asks the application's conversation for the password (PostgreSQL answers with what the
 * client sent, whole), so nothing in between limits its length.
 *
 * Usage (/etc/pam.d/quorumdb-token):  auth required /path/pam_quorumdb_token.so /path/to/checker
 * The checker gets PAM_USER and PAM_RHOST in an otherwise empty environment; the token is never put in
 * an argument or an environment variable (both are visible in /proc).
 */
#define PAM_SM_AUTH
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <security/pam_appl.h>
#include <security/pam_ext.h>
#include <security/pam_modules.h>
#include <syslog.h>

#define MAX_TOKEN (64 * 1024)

/* The password from the application's conversation (PostgreSQL: the client's password message). */
static char *ask_password(pam_handle_t *pamh) {
    const struct pam_conv *conv = NULL;
    if (pam_get_item(pamh, PAM_CONV, (const void **)&conv) != PAM_SUCCESS || conv == NULL || conv->conv == NULL)
        return NULL;
    struct pam_message msg = {.msg_style = PAM_PROMPT_ECHO_OFF, .msg = "Password: "};
    const struct pam_message *msgs[1] = {&msg};
    struct pam_response *resp = NULL;
    if (conv->conv(1, msgs, &resp, conv->appdata_ptr) != PAM_SUCCESS || resp == NULL)
        return NULL;
    char *password = resp[0].resp;
    free(resp);
    return password;
}

static int write_all(int fd, const char *buf, size_t len) {
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

static int run_checker(pam_handle_t *pamh, const char *checker, const char *user, const char *rhost,
                       const char *token) {
    int fds[2];
    if (pipe(fds) != 0)
        return PAM_SYSTEM_ERR;
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return PAM_SYSTEM_ERR;
    }
    if (pid == 0) {
        /* Child: the token on stdin; stdout and stderr stay the application's (PostgreSQL's log). */
        close(fds[1]);
        if (dup2(fds[0], STDIN_FILENO) < 0)
            _exit(127);
        close(fds[0]);
        signal(SIGPIPE, SIG_DFL);
        size_t ulen = strlen(user) + sizeof "PAM_USER=", rlen = strlen(rhost) + sizeof "PAM_RHOST=";
        char *env_user = malloc(ulen), *env_rhost = malloc(rlen);
        if (env_user == NULL || env_rhost == NULL)
            _exit(127);
        snprintf(env_user, ulen, "PAM_USER=%s", user);
        snprintf(env_rhost, rlen, "PAM_RHOST=%s", rhost);
        char *const argv[] = {(char *)checker, NULL};
        char *const envp[] = {env_user, env_rhost, "PATH=/usr/bin:/bin", NULL};
        execve(checker, argv, envp);
        _exit(127);
    }
    close(fds[0]);
    /* The child may exit before reading everything (a malformed token): ignore SIGPIPE meanwhile. */
    struct sigaction ignore = {.sa_handler = SIG_IGN}, old;
    sigemptyset(&ignore.sa_mask);
    sigaction(SIGPIPE, &ignore, &old);
    write_all(fds[1], token, strlen(token));
    close(fds[1]);
    sigaction(SIGPIPE, &old, NULL);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) {
            pam_syslog(pamh, LOG_ERR, "waitpid: %s", strerror(errno));
            return PAM_SYSTEM_ERR;
        }
    }
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? PAM_SUCCESS : PAM_AUTH_ERR;
}

PAM_EXTERN int pam_sm_authenticate(pam_handle_t *pamh, int flags, int argc, const char **argv) {
    (void)flags;
    if (argc < 1 || argv[0][0] != '/') {
        pam_syslog(pamh, LOG_ERR, "usage: pam_quorumdb_token.so /absolute/path/to/checker");
        return PAM_SERVICE_ERR;
    }
    const char *user = NULL;
    if (pam_get_user(pamh, &user, NULL) != PAM_SUCCESS || user == NULL || user[0] == '\0')
        return PAM_USER_UNKNOWN;
    const void *rhost = NULL;
    if (pam_get_item(pamh, PAM_RHOST, &rhost) != PAM_SUCCESS || rhost == NULL)
        rhost = "";
    char *token = ask_password(pamh);
    if (token == NULL)
        return PAM_AUTH_ERR;
    int result = strlen(token) > MAX_TOKEN ? PAM_AUTH_ERR : run_checker(pamh, argv[0], user, rhost, token);
    explicit_bzero(token, strlen(token));
    free(token);
    return result;
}

PAM_EXTERN int pam_sm_setcred(pam_handle_t *pamh, int flags, int argc, const char **argv) {
    (void)pamh;
    (void)flags;
    (void)argc;
    (void)argv;
    return PAM_SUCCESS;
}
