package io.github.qwenasredge

import org.junit.runner.Description
import org.junit.runner.JUnitCore
import org.junit.runner.Request
import org.junit.runner.notification.Failure
import org.junit.runner.notification.RunListener
import java.io.File
import java.util.jar.JarFile
import kotlin.system.exitProcess

/**
 * Runs every JUnit 4 test class of this project (classes under `io.github.qwenasredge` whose name
 * ends in `Test`, found in the class path's directories and jars), or the classes named as
 * arguments; prints each failure with its message and ends with the line
 * `kotlin: N passed, N failed` (`, N skipped` when some were ignored or assumed away). Exits 1 on
 * any failure or when no test ran.
 */
object TestMain {
    private const val PACKAGE = "io/github/qwenasredge/"

    /** Entry point: optional fully qualified test class names. */
    @JvmStatic
    fun main(args: Array<String>) {
        val names = if (args.isNotEmpty()) args.toList() else findTestClasses()
        val classes = names.map { Class.forName(it) }
        val listener = CountingListener()
        val core = JUnitCore()
        core.addListener(listener)
        for (c in classes) core.run(Request.aClass(c))
        val skipped = if (listener.skipped > 0) ", ${listener.skipped} skipped" else ""
        println("kotlin: ${listener.passed} passed, ${listener.failed} failed$skipped")
        exitProcess(if (listener.failed > 0 || listener.passed + listener.failed == 0) 1 else 0)
    }

    private fun findTestClasses(): List<String> {
        val found = sortedSetOf<String>()
        for (entry in System.getProperty("java.class.path").split(File.pathSeparator)) {
            val file = File(entry)
            val paths = when {
                file.isDirectory -> file.walk().filter { it.isFile }.map { it.relativeTo(file).invariantSeparatorsPath }.toList()
                file.isFile && file.name.endsWith(".jar") -> JarFile(file).use { jar -> jar.entries().toList().map { it.name } }
                else -> emptyList()
            }
            paths.filter { it.startsWith(PACKAGE) && it.endsWith("Test.class") && '$' !in it }
                .mapTo(found) { it.removeSuffix(".class").replace('/', '.') }
        }
        return found.toList()
    }

    private class CountingListener : RunListener() {
        var passed = 0
        var failed = 0
        var skipped = 0
        private var current: Description? = null
        private var outcome = ""

        override fun testStarted(description: Description) {
            current = description
            outcome = "pass"
        }

        override fun testFailure(failure: Failure) {
            failed++
            if (failure.description == current) outcome = "fail"
            val where = failure.description.let { "${it.className.substringAfterLast('.')}.${it.methodName ?: "(class)"}" }
            println("FAIL $where: ${failure.exception.javaClass.name}: ${failure.message}")
            val trace = failure.exception.stackTrace.takeWhile { !it.className.startsWith("java.lang.reflect") && !it.className.startsWith("jdk.internal") }
            trace.take(6).forEach { println("    at $it") }
        }

        override fun testAssumptionFailure(failure: Failure) {
            skipped++
            outcome = "skip"
            println("SKIP ${failure.description.methodName}: ${failure.message}")
        }

        override fun testIgnored(description: Description) {
            skipped++
        }

        override fun testFinished(description: Description) {
            if (outcome == "pass") passed++
            outcome = ""
            current = null
        }
    }
}
